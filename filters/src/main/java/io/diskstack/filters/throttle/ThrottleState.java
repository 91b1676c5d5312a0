package io.diskstack.filters.throttle;

import io.diskstack.filters.throttle.ThrottleLimits.Bucket;

/**
 * The six leaky buckets of a throttle group and the time they last leaked (QEMU's
 * ThrottleState). Time comes from the caller, so tests drive it with a fake clock. Not
 * thread-safe: the group's lock guards it.
 */
final class ThrottleState {
    private final LeakyBucket[] buckets = new LeakyBucket[Bucket.values().length];
    private ThrottleLimits limits;
    private long lastLeak;

    ThrottleState(ThrottleLimits limits, long now) {
        for (int i = 0; i < buckets.length; i++) {
            buckets[i] = new LeakyBucket();
        }
        configure(limits, now);
    }

    /** Applies new limits from now on; the buckets start empty. */
    void configure(ThrottleLimits newLimits, long now) {
        this.limits = newLimits;
        this.lastLeak = now;
        for (Bucket b : Bucket.values()) {
            buckets[b.ordinal()].configure(newLimits.avg(b), newLimits.max(b), newLimits.maxLength(b));
        }
    }

    ThrottleLimits limits() {
        return limits;
    }

    /** How long a request in this direction must wait at time {@code now}; 0 if it may go. */
    long waitNanos(boolean write, long now) {
        leak(now);
        long wait = 0;
        for (Bucket b : Bucket.values()) {
            if (b.applies(write)) {
                wait = Math.max(wait, buckets[b.ordinal()].waitNanos());
            }
        }
        return wait;
    }

    /**
     * Counts a request that goes now: its bytes in the bps buckets, and in the iops buckets one
     * operation, or {@code bytes / iops-size} of them for requests larger than {@code iops-size}.
     */
    void account(boolean write, long bytes) {
        long opSize = limits.iopsSize();
        double ops = opSize > 0 && bytes > opSize ? (double) bytes / opSize : 1.0;
        for (Bucket b : Bucket.values()) {
            LeakyBucket bucket = buckets[b.ordinal()];
            if (b.applies(write) && bucket.isEnabled()) {
                bucket.add(b.countsBytes() ? bytes : ops);
            }
        }
    }

    double level(Bucket b) {
        return buckets[b.ordinal()].level();
    }

    private void leak(long now) {
        long delta = now - lastLeak;
        if (delta <= 0) {
            return;
        }
        lastLeak = now;
        for (LeakyBucket b : buckets) {
            b.leak(delta);
        }
    }
}
