package io.diskstack.core.control;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.snapshot.ExternalSnapshotCommands;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code .control/DISK/snapshot-external}: write NAME to put overlays below the filters; read
 * the overlays made in this mount. The commands outlive rebuilds of the tree, which each
 * snapshot causes, so they keep their listing.
 */
public final class ExternalSnapshotFiles implements ControlTreeProvider {
    private final Map<String, ExternalSnapshotCommands> commands = new ConcurrentHashMap<>();

    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (BlockBackend b : context.stack().backends()) {
            ExternalSnapshotCommands c = commands.computeIfAbsent(b.name(),
                    id -> new ExternalSnapshotCommands(context.stack(), id));
            files.put(b.name() + "/snapshot-external", ControlFile.command(c::listing, c::take));
        }
        return files;
    }
}
