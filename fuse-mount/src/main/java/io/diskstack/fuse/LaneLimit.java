package io.diskstack.fuse;

/**
 * How many threads a lane lets run its requests at once: one per CPU to start with, more only
 * while the threads over that still get more done. A request can take long because it waits on
 * something many can wait on together (a slow device that takes requests in parallel, a network
 * server: more threads help) or because it contends (4 KiB writes into one image through the
 * page cache queue on the file's lock, its journal and the CPUs; a throttle serves them one at a
 * time: more threads only make some of them wait many milliseconds). The two differ in how the
 * time a request takes moves with the number of threads, as TCP Vegas tells a queue building up
 * from a long path. A lane completes {@code running / mean time} requests per second (Little's
 * law, with the threads it ran, on average over the window); every {@link #WINDOW} completions
 * the limit goes down one if that is less than the base rate plus {@link #GAIN} of one base
 * thread's rate for each thread over the least limit, and otherwise up one if requests waited for
 * a thread. So a server whose requests take longer the more are in flight, but less than in
 * proportion (an NBD server on the same CPUs), gets more threads, where contention, which makes
 * them take longer in proportion, does not. The test is the average gain of the threads over the
 * least, not the last one's: past the point where a server takes no more at once, the limit may
 * go on to about four times as many threads (whose requests only wait at the server), which costs
 * threads and latency there, not throughput. The base is the mean of a window run at the least
 * limit, measured at the start and again every {@link #BASE_EVERY} windows (what the lane serves
 * can change), so a steady mix of quick cache hits and slow misses is in the base too. Means, not
 * medians: the convoys that make contention costly show in the mean first (with medians, two
 * writers on a raw image ran at three to four threads and a p99 of 4 ms instead of 3); a rare
 * slow request (an fsync among writes) can take one thread off for a window.
 *
 * <p>Not thread-safe: the caller holds its lock. Times are passed in, so tests need no clock.
 */
final class LaneLimit {
    /** Completions that make one window. */
    static final int WINDOW = 32;
    /** Windows between two measurements of the base time. */
    static final int BASE_EVERY = 64;
    /** What each thread over the least limit must add, as a share of one thread's rate at the least limit. */
    static final double GAIN = 0.25;

    private final int min;
    private final int max;
    private int limit;
    private int completions;
    private long totalNanos;
    private long totalRunning;
    private boolean saturated;
    private long baseNanos;
    /** Windows until the next base measurement; at 0 the limit is at min and the next window measures it. */
    private int untilBase;
    private int limitBeforeBase;
    /** Completions not counted: requests begun before the limit dropped to min for the base. */
    private int settling;

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
        this.limitBeforeBase = min;
    }

    int limit() {
        return limit;
    }

    /** A request found every thread the limit allows busy and waits for one. */
    void queued() {
        saturated = true;
    }

    /** A request completed after {@code nanos} on its thread, with {@code running} threads in the lane. */
    void completed(long nanos, int running) {
        if (settling > 0) {
            settling--;
            return;
        }
        totalNanos += nanos;
        totalRunning += running;
        if (++completions < WINDOW) {
            return;
        }
        long mean = totalNanos / WINDOW;
        double inFlight = Math.max(min, (double) totalRunning / WINDOW);
        boolean waited = saturated;
        completions = 0;
        totalNanos = 0;
        totalRunning = 0;
        saturated = false;
        if (untilBase == 0) {
            baseNanos = Math.max(1, mean);
            limit = limitBeforeBase;
            untilBase = BASE_EVERY;
        } else if (--untilBase == 0) {
            // the next window is the base: at the least limit, once the requests begun above it are done
            limitBeforeBase = limit;
            settling = limit > min ? limit : 0;
            limit = min;
        } else if (limit > min && mean > longestPaying(inFlight)) {
            limit = Math.max(min, limit - 1);
        } else if (waited) {
            limit = Math.min(max, limit + 1);
        }
    }

    /** The longest mean time at which {@code running} threads get their {@link #GAIN} each over the least. */
    private double longestPaying(double running) {
        return baseNanos * running / (min + GAIN * (running - min));
    }
}
