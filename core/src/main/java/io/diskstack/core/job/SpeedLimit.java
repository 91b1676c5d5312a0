package io.diskstack.core.job;

/**
 * A job's {@code speed} (bytes per second, 0 for none): each copied chunk costs its share of a
 * second, and {@link #delayNanos} says how long to wait after it so that the job never gets
 * ahead of the limit by more than one chunk.
 */
final class SpeedLimit {
    private final JobClock clock;
    private long bytesPerSecond;
    private long next;

    SpeedLimit(JobClock clock) {
        this.clock = clock;
    }

    synchronized void set(long bytesPerSecond) {
        this.bytesPerSecond = bytesPerSecond;
        this.next = clock.nanoTime();
    }

    synchronized long get() {
        return bytesPerSecond;
    }

    /** Accounts {@code bytes} just copied; returns how long to wait before copying more. */
    synchronized long delayNanos(long bytes) {
        if (bytesPerSecond <= 0) {
            return 0;
        }
        long now = clock.nanoTime();
        next = Math.max(next, now) + (long) (bytes * 1e9 / bytesPerSecond);
        return next - now;
    }
}
