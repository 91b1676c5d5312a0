package io.diskstack.filters.throttle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.filters.throttle.ThrottleLimits.Bucket;
import org.junit.jupiter.api.Test;

/** The leaky buckets against a fake clock: rates, bursts, iops-size, directions. */
class ThrottleStateTest {
    private static final long SECOND = 1_000_000_000L;

    private static ThrottleLimits limits(Object... keyValues) {
        ThrottleLimits l = ThrottleLimits.NONE;
        for (int i = 0; i < keyValues.length; i += 2) {
            l = l.with((String) keyValues[i], ((Number) keyValues[i + 1]).longValue());
        }
        assertEquals(null, l.problem(k -> k));
        return l;
    }

    /** A client that sends requests back to back for {@code seconds}; returns the units it got through. */
    private static long run(ThrottleState s, boolean write, long requestBytes, double seconds, long[] clock) {
        long end = clock[0] + (long) (seconds * SECOND);
        long sent = 0;
        while (true) {
            long wait = s.waitNanos(write, clock[0]);
            if (clock[0] + wait > end) {
                clock[0] = end;
                return sent;
            }
            clock[0] += wait;
            s.account(write, requestBytes);
            sent += requestBytes;
        }
    }

    @Test
    void noLimitsNeverWait() {
        ThrottleState s = new ThrottleState(ThrottleLimits.NONE, 0);
        for (int i = 0; i < 1000; i++) {
            assertEquals(0, s.waitNanos(i % 2 == 0, 0));
            s.account(i % 2 == 0, 1 << 20);
        }
    }

    @Test
    void steadyRateIsTheLimit() {
        long[] clock = {0};
        ThrottleState s = new ThrottleState(limits("bps-total", 1_000_000), 0);
        long sent = run(s, true, 4096, 10, clock);
        // The bucket holds a tenth of a second, plus the request that overflowed it.
        double expected = 1_000_000 * 10 + 100_000 + 4096;
        assertTrue(Math.abs(sent - expected) <= 4096, "sent " + sent + ", expected about " + expected);
    }

    @Test
    void waitIsTheTimeToDrainTheOverflow() {
        ThrottleState s = new ThrottleState(limits("bps-total", 1000), 0);
        assertEquals(0, s.waitNanos(false, 0));
        s.account(false, 100);
        assertEquals(0, s.waitNanos(false, 0), "a tenth of a second fits");
        s.account(false, 50);
        assertEquals(50 * SECOND / 1000, s.waitNanos(false, 0));
        assertEquals(25 * SECOND / 1000, s.waitNanos(false, 25 * SECOND / 1000));
        assertEquals(0, s.waitNanos(false, 50 * SECOND / 1000));
    }

    @Test
    void aBurstGoesAtOnceThenTheSteadyRate() {
        long[] clock = {0};
        ThrottleState s = new ThrottleState(limits("bps-total", 1_000_000, "bps-total-max", 4_000_000), 0);
        long sent = 0;
        while (s.waitNanos(true, 0) == 0) {
            s.account(true, 65536);
            sent += 65536;
        }
        assertTrue(sent >= 4_000_000 && sent < 4_000_000 + 65536, "burst at time 0: " + sent);
        long later = run(s, true, 65536, 5, clock);
        assertTrue(Math.abs(later - 5_000_000) <= 65536, "then 1 MB/s: " + later);
    }

    @Test
    void aLongBurstRunsAtTheBurstRate() {
        long[] clock = {0};
        ThrottleState s = new ThrottleState(limits("bps-total", 1_000_000, "bps-total-max", 3_000_000,
                "bps-total-max-length", 4), 0);
        long first = run(s, false, 10_000, 1, clock);
        // At most a tenth of a second of max at once, then max per second.
        assertTrue(Math.abs(first - 3_300_000) <= 20_000, "first second at bps-total-max: " + first);
        run(s, false, 10_000, 20, clock);
        long steady = run(s, false, 10_000, 2, clock);
        assertTrue(Math.abs(steady - 2_000_000) <= 20_000, "after the burst, bps-total: " + steady);
    }

    @Test
    void readAndWriteBucketsAreSeparate() {
        long[] clock = {0};
        ThrottleState s = new ThrottleState(limits("bps-read", 100_000, "bps-write", 1_000_000), 0);
        long reads = run(s, false, 1000, 2, clock);
        long writes = run(s, true, 1000, 2, clock);
        assertTrue(Math.abs(reads - 210_000) <= 1000, "reads " + reads);
        assertTrue(Math.abs(writes - 2_100_000) <= 1000, "writes " + writes);
    }

    @Test
    void totalCountsBothDirections() {
        ThrottleState s = new ThrottleState(limits("iops-total", 10), 0);
        s.account(false, 1);
        s.account(true, 1);
        assertEquals(2.0, s.level(Bucket.IOPS_TOTAL), 1e-9);
        assertTrue(s.waitNanos(true, 0) > 0);
        assertTrue(s.waitNanos(false, 0) > 0);
    }

    @Test
    void iopsSizeCountsLargeRequestsAsSeveral() {
        ThrottleState s = new ThrottleState(limits("iops-total", 100, "iops-size", 4096), 0);
        s.account(true, 4096 * 8);
        assertEquals(8.0, s.level(Bucket.IOPS_TOTAL), 1e-9);
        s.account(true, 512);
        assertEquals(9.0, s.level(Bucket.IOPS_TOTAL), 1e-9);
    }

    @Test
    void iopsLimitOperations() {
        long[] clock = {0};
        ThrottleState s = new ThrottleState(limits("iops-write", 50), 0);
        long ops = run(s, true, 1, 4, clock);
        assertTrue(Math.abs(ops - (200 + 5 + 1)) <= 1, "ops " + ops);
    }

    @Test
    void newLimitsApplyAtOnceWithEmptyBuckets() {
        ThrottleState s = new ThrottleState(limits("bps-total", 1000), 0);
        s.account(true, 10_000);
        assertTrue(s.waitNanos(true, 0) > 5 * SECOND);
        s.configure(limits("bps-total", 1_000_000), 0);
        assertEquals(0, s.waitNanos(true, 0));
        s.configure(ThrottleLimits.NONE, 0);
        s.account(true, 1L << 40);
        assertEquals(0, s.waitNanos(true, 0));
    }
}
