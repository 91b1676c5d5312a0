package io.diskstack.core.snapshot;

import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Times the phases of one operation and logs each as it ends, at FINE ({@code -vv}), so a slow
 * snapshot shows where its time went: {@code snapshot-external 's1' of 'disk0': flush bases 3.1 ms}.
 */
public final class PhaseTimer {
    private final Logger log;
    private final String what;
    private final long start = System.nanoTime();
    private long mark = start;

    public PhaseTimer(Logger log, String what) {
        this.log = log;
        this.what = what;
    }

    /** Ends the phase that began at the previous call (or at the start) and logs how long it took. */
    public void done(String phase) {
        long now = System.nanoTime();
        long took = now - mark;
        mark = now;
        if (log.isLoggable(Level.FINE)) {
            log.fine(what + ": " + phase + " " + millis(took) + " ms");
        }
    }

    /** Logs the time since the start: {@code total 12.3 ms}, with a note such as how long I/O was held. */
    public void total(String note) {
        if (log.isLoggable(Level.FINE)) {
            log.fine(what + ": total " + millis(System.nanoTime() - start) + " ms" + (note.isEmpty() ? "" : ", " + note));
        }
    }

    public static String millis(long nanos) {
        return String.format("%.1f", nanos / 1e6);
    }
}
