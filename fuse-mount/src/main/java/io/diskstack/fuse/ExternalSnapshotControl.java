package io.diskstack.fuse;

import io.diskstack.core.config.Stack;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.snapshot.ExternalSnapshots;
import io.diskstack.core.snapshot.StackSnapshots;
import java.io.IOException;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * {@code MNT/.control/DISK/snapshot-external}: writing {@code NAME} puts a new qcow2 overlay
 * above each node below the export's filters and records them in the config file; reading shows
 * the overlays made so far in this mount, one per line: {@code NAME NODE FILE}.
 */
final class ExternalSnapshotControl implements ControlFile {
    private final Stack stack;
    private final String export;
    private final CopyOnWriteArrayList<String> made = new CopyOnWriteArrayList<>();

    ExternalSnapshotControl(Stack stack, String export) {
        this.stack = stack;
        this.export = export;
    }

    @Override
    public String read() {
        return made.isEmpty() ? "" : String.join("\n", made) + "\n";
    }

    @Override
    public boolean isWritable() {
        return true;
    }

    @Override
    public void write(String text) throws IOException {
        for (ExternalSnapshots.Overlay o : StackSnapshots.external(stack, export,
                StackSnapshots.ExternalCommand.parse(text, stack.graph().baseDir()))) {
            made.add(text + " " + o.overlay().nodeName() + " " + o.path());
        }
    }
}
