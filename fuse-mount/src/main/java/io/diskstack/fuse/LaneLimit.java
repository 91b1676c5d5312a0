package io.diskstack.fuse;

/**
 * How many threads a lane lets run its requests at once: one per CPU to start with, more only
 * while more of them do not make each one slower. A request can take long because it waits on
 * something many can wait on together (a slow device that takes requests in parallel, a network
 * server: more threads help) or because it contends (4 KiB writes into one image through the
 * page cache queue on the file's lock, its journal and the CPUs: more threads only make some of
 * them wait many milliseconds, and complete fewer). The two differ in how the time a request
 * takes moves with the number of threads, as TCP Vegas tells a queue building up from a long
 * path: every {@link #WINDOW} completions, the limit goes up one while requests wait for a
 * thread and the window's mean time is under twice the least time seen lately, and down one when
 * it is over. A lane whose requests wait on something that serves them one at a time (a
 * throttle, a disk without a queue) thus keeps few threads, and its other requests wait in the
 * lane, in order, rather than in the scheduler.
 *
 * <p>Not thread-safe: the caller holds its lock. Times are passed in, so tests need no clock.
 */
final class LaneLimit {
    /** Completions that make one window. */
    static final int WINDOW = 32;
    /** Windows after which the least time is measured afresh (what the lane serves can change). */
    static final int MIN_WINDOWS = 64;

    private final int min;
    private final int max;
    private int limit;
    private int completions;
    private long totalNanos;
    private long windowMin = Long.MAX_VALUE;
    private boolean saturated;
    private long leastNanos = Long.MAX_VALUE;
    private int windowsSinceLeast;

    /**
     * @param min threads the lane always may use (one per CPU)
     * @param max threads it may use at most
     */
    LaneLimit(int min, int max) {
        if (min < 1 || max < min) {
            throw new IllegalArgumentException("min " + min + ", max " + max);
        }
        this.min = min;
        this.max = max;
        this.limit = min;
    }

    int limit() {
        return limit;
    }

    /** A request found every thread the limit allows busy and waits for one. */
    void queued() {
        saturated = true;
    }

    /** A request completed after {@code nanos} on its thread. */
    void completed(long nanos) {
        completions++;
        totalNanos += nanos;
        windowMin = Math.min(windowMin, nanos);
        if (completions < WINDOW) {
            return;
        }
        if (++windowsSinceLeast >= MIN_WINDOWS) {
            leastNanos = windowMin;
            windowsSinceLeast = 0;
        } else {
            leastNanos = Math.min(leastNanos, windowMin);
        }
        long mean = totalNanos / completions;
        if (mean > 2 * Math.max(leastNanos, 1)) {
            limit = Math.max(min, limit - 1);
        } else if (saturated) {
            limit = Math.min(max, limit + 1);
        }
        completions = 0;
        totalNanos = 0;
        windowMin = Long.MAX_VALUE;
        saturated = false;
    }
}
