package io.diskstack.filters.throttle;

/**
 * One leaky bucket of a throttle group (QEMU's LeakyBucket): requests pour units (bytes or
 * operations) in, the bucket leaks at {@code avg} per second, and a request must wait while the
 * bucket is fuller than it may be. Without a burst rate the bucket holds a tenth of a second
 * at {@code avg}; with one, {@code max × length} units, of which at most a tenth of a second at
 * {@code max} go in at once when the burst lasts longer than a second. Not thread-safe: the
 * group's lock guards it.
 */
final class LeakyBucket {
    private static final double NANOS_PER_SECOND = 1e9;

    private double avg;
    private double max;
    private long burstLength = 1;
    private double level;
    private double burstLevel;

    /** Sets the rates and empties the bucket, as QEMU does when limits change. */
    void configure(long avg, long max, long burstLength) {
        this.avg = avg;
        this.max = max;
        this.burstLength = burstLength;
        this.level = 0;
        this.burstLevel = 0;
    }

    boolean isEnabled() {
        return avg > 0;
    }

    /** Lets {@code deltaNanos} worth of units flow out. */
    void leak(long deltaNanos) {
        level = Math.max(level - avg * deltaNanos / NANOS_PER_SECOND, 0);
        if (burstLength > 1) {
            burstLevel = Math.max(burstLevel - max * deltaNanos / NANOS_PER_SECOND, 0);
        }
    }

    /** Pours in the units of a request that was let through; the bucket may overflow. */
    void add(double units) {
        level += units;
        if (burstLength > 1) {
            burstLevel += units;
        }
    }

    /** How long a new request must wait before it may go, in nanoseconds; 0 if it may go now. */
    long waitNanos() {
        if (avg <= 0) {
            return 0;
        }
        double bucketSize;
        double burstBucketSize;
        if (max <= 0) {
            // A tenth of a second of slack: without it every other request would wait.
            bucketSize = avg / 10;
            burstBucketSize = 0;
        } else {
            bucketSize = max * burstLength;
            burstBucketSize = max / 10;
        }
        double extra = level - bucketSize;
        if (extra > 0) {
            return nanosToDrain(extra, avg);
        }
        if (burstLength > 1) {
            extra = burstLevel - burstBucketSize;
            if (extra > 0) {
                return nanosToDrain(extra, max);
            }
        }
        return 0;
    }

    double level() {
        return level;
    }

    private static long nanosToDrain(double extra, double rate) {
        return Math.max(1, (long) Math.ceil(extra * NANOS_PER_SECOND / rate));
    }
}
