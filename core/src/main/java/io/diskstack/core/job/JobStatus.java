package io.diskstack.core.job;

import java.util.Locale;

/** A job's state, with QEMU's names (JobStatus in its QAPI schema). */
public enum JobStatus {
    /** Made, not started yet. */
    CREATED,
    /** Copying. */
    RUNNING,
    /** Paused by the user: nothing is copied until it resumes. */
    PAUSED,
    /** In sync: the copy keeps up with writes and waits for {@code complete} (mirror, commit). */
    READY,
    /** Done: the graph change (if any) is made and recorded. */
    CONCLUDED,
    /** Cancelled or failed: nothing changed; {@code error} says why. */
    ABORTED;

    /** {@code running}, as QEMU prints it. */
    public String qemuName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public boolean isFinished() {
        return this == CONCLUDED || this == ABORTED;
    }
}
