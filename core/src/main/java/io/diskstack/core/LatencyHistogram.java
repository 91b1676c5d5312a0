package io.diskstack.core;

import java.util.concurrent.atomic.LongAdder;

/**
 * Request latencies in fixed buckets (25 µs … 10 s, the 1-2.5-5 series Prometheus users know),
 * recorded from many threads without locks or allocation: one {@link LongAdder} per bucket and
 * one for the sum.
 */
public final class LatencyHistogram {
    /** Upper bounds of the buckets, in nanoseconds; a last bucket takes everything above. */
    private static final long[] BOUNDS_NANOS = {
        25_000L, 50_000L, 100_000L, 250_000L, 500_000L,
        1_000_000L, 2_500_000L, 5_000_000L, 10_000_000L, 25_000_000L, 50_000_000L,
        100_000_000L, 250_000_000L, 500_000_000L, 1_000_000_000L, 2_500_000_000L, 5_000_000_000L, 10_000_000_000L,
    };

    private final LongAdder[] buckets = new LongAdder[BOUNDS_NANOS.length + 1];
    private final LongAdder sumNanos = new LongAdder();

    public LatencyHistogram() {
        for (int i = 0; i < buckets.length; i++) {
            buckets[i] = new LongAdder();
        }
    }

    /** Counts one request that took {@code nanos}. */
    public void record(long nanos) {
        int i = 0;
        while (i < BOUNDS_NANOS.length && nanos > BOUNDS_NANOS[i]) {
            i++;
        }
        buckets[i].increment();
        sumNanos.add(Math.max(0, nanos));
    }

    /** The bucket bounds in nanoseconds (without the last, unbounded one). */
    public static long[] boundsNanos() {
        return BOUNDS_NANOS.clone();
    }

    /**
     * The counts so far. {@code cumulative[i]} counts the requests up to bound {@code i}; the
     * last element counts them all, so it always equals {@link Snapshot#count()}.
     */
    public Snapshot snapshot() {
        long[] cumulative = new long[buckets.length];
        long running = 0;
        for (int i = 0; i < buckets.length; i++) {
            running += buckets[i].sum();
            cumulative[i] = running;
        }
        return new Snapshot(cumulative, sumNanos.sum());
    }

    /** Counts read at one moment; the sum may lag the counts by requests recorded meanwhile. */
    public record Snapshot(long[] cumulative, long sumNanos) {
        public long count() {
            return cumulative[cumulative.length - 1];
        }
    }
}
