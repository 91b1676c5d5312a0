package io.diskstack.core;

import java.io.IOException;
import java.util.Collection;

/**
 * What only a front end knows about its exports: who has them open. A core command that changes
 * a disk's content under its users (snapshot revert) runs through it, so the front end can refuse
 * while the disk is open and hold new opens back until the command is done.
 */
public interface ExportGuard {
    /** A guard for front ends that keep no open handles: runs the action at once. */
    ExportGuard NONE = (exports, reason, action) -> action.run();

    /** Something to run while the exports are closed. */
    interface Action {
        void run() throws IOException;
    }

    /**
     * Runs the action while nobody has any of the exports open and nobody can open them.
     *
     * @param exports the export ids the action changes
     * @param reason  why they must be closed, for the message: {@code as a revert changes its content under it}
     * @throws BlockIOException (EBUSY) naming the export that stays open
     */
    void whileClosed(Collection<String> exports, String reason, Action action) throws IOException;

    /**
     * Refuses an export this front end could not show as asked (a file owner that does not
     * exist), before {@code block-export-add} changes anything.
     *
     * @throws ConfigException naming the export and the option
     */
    default void checkExport(io.diskstack.core.config.ExportConfig export) {}
}
