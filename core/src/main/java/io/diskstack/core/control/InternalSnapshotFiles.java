package io.diskstack.core.control;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.snapshot.InternalSnapshotCommands;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code .control/DISK/snapshot-internal} (write NAME: take; read: the list),
 * {@code snapshot-delete} and {@code snapshot-revert} (write NAME or ID).
 */
public final class InternalSnapshotFiles implements ControlTreeProvider {
    private static final String USAGE = "NAME|ID\n";

    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (BlockBackend b : context.stack().backends()) {
            InternalSnapshotCommands commands = new InternalSnapshotCommands(context.stack(), b, context.guard());
            files.put(b.name() + "/snapshot-internal", ControlFile.command(commands::listing, commands::create));
            files.put(b.name() + "/snapshot-delete", ControlFile.command(() -> USAGE, commands::delete));
            files.put(b.name() + "/snapshot-revert", ControlFile.command(() -> USAGE, commands::revert));
        }
        return files;
    }

    /** Kept free for snapshot files of the whole mount. */
    @Override
    public Set<String> reservedNames() {
        return Set.of("snapshots");
    }
}
