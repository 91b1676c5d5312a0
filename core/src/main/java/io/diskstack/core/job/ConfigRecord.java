package io.diskstack.core.job;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import io.diskstack.core.config.ConfigEdit;
import io.diskstack.core.config.ConfigRewrite;
import io.diskstack.core.config.Stack;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Where a job records its graph change: the mount's config file, replaced atomically before the
 * graph changes, and put back if the graph change fails. Under the stack's monitor, as every
 * other writer of the config (snapshots, graph edits) is: a snapshot reads the config, prepares
 * its overlays while the guest writes, then renames its edit over the file, and a job's pivot
 * recorded in between would be lost.
 */
final class ConfigRecord {
    private final Stack stack;
    private byte[] before;

    ConfigRecord(Stack stack) {
        this.stack = stack;
    }

    /** Refuses a job that changes the graph on a mount without a config file (EINVAL). */
    static void require(Stack stack, String job) throws BlockIOException {
        if (stack.config().source() == null) {
            throw new BlockIOException(Errno.EINVAL, "job '" + job + "': mounted without a config file: nothing "
                    + "to record the change in");
        }
    }

    /** Checks that the edit can be recorded, changing nothing (a dry run before the job starts). */
    void check(Consumer<ConfigEdit> edit) throws IOException {
        Path source = stack.config().source();
        ConfigEdit e = ConfigEdit.of(Files.readAllBytes(source), where());
        edit.accept(e);
        e.toBytes();
    }

    /** Writes the edited config; {@link #restore()} puts the previous one back. */
    void write(Consumer<ConfigEdit> edit) throws IOException {
        synchronized (stack) {
            Path source = stack.config().source();
            before = Files.readAllBytes(source);
            ConfigEdit e = ConfigEdit.of(before, where());
            edit.accept(e);
            ConfigRewrite.writeAtomically(source, e.toBytes());
            stack.externalSnapshots(e.snapshots());
        }
    }

    /** Puts back the config as it was before {@link #write}. */
    void restore() throws IOException {
        synchronized (stack) {
            if (before != null) {
                ConfigRewrite.writeAtomically(stack.config().source(), before);
                stack.externalSnapshots(ConfigEdit.of(before, where()).snapshots());
            }
        }
    }

    private String where() {
        return "config '" + stack.config().source() + "'";
    }
}
