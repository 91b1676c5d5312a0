package io.diskstack.core.snapshot;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import io.diskstack.core.config.Stack;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The external snapshot command of one export, for any front end: {@code NAME} or
 * {@code name=NAME[,overlay-dir=DIR][,format=FMT]} puts an overlay above each image below the
 * filters and records it in the config ({@link StackSnapshots#external}). It keeps what it made
 * in this mount, one {@code NAME NODE FILE} line per overlay.
 */
public final class ExternalSnapshotCommands {
    private final Stack stack;
    private final String export;
    private final List<String> made = new CopyOnWriteArrayList<>();

    public ExternalSnapshotCommands(Stack stack, String export) {
        this.stack = stack;
        this.export = export;
    }

    /** Takes the snapshot the text names; EEXIST if an internal snapshot of the export has the name. */
    public void take(String text) throws IOException {
        StackSnapshots.ExternalCommand command = StackSnapshots.ExternalCommand.parse(text, stack.graph().baseDir());
        ExternalSnapshots.checkName(command.name());
        refuseInternalNamed(command.name());
        for (ExternalSnapshots.Overlay o : StackSnapshots.external(stack, export, command)) {
            made.add(text + " " + o.overlay().nodeName() + " " + o.path());
        }
    }

    /** One name shows one view in {@code MNT/.snapshots/DISK/}: refuse one an internal snapshot of the disk has. */
    private void refuseInternalNamed(String name) throws IOException {
        BlockBackend backend = stack.graph().backend(export);
        String holder = backend == null ? null : SnapshotViews.internalSnapshotHolder(backend.rootNode(), name);
        if (holder != null) {
            throw new BlockIOException(Errno.EEXIST, "export '" + export + "' has an internal snapshot '" + name
                    + "' already (in node " + holder + ")");
        }
    }

    /** The overlays made in this mount, one {@code NAME NODE FILE} line each. */
    public String listing() {
        return made.isEmpty() ? "" : String.join("\n", made) + "\n";
    }
}
