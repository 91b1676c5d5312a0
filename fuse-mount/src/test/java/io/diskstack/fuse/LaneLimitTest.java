package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.function.IntToLongFunction;
import org.junit.jupiter.api.Test;

/**
 * The lane's limit on modelled request times: a model gives the time a request takes with n
 * threads in the lane, with ±20 % jitter. The real lanes run under every mount test, and their
 * effect on throughput and tail latency is measured by scripts/bench.
 */
class LaneLimitTest {
    private static final int MIN = 2;
    private static final int MAX = 64;
    private final Random random = new Random(42);

    /** Serves requests (every one waited for a thread if {@code queued}) and returns the highest limit seen in the last tenth. */
    private int serve(LaneLimit limit, int requests, boolean queued, IntToLongFunction nanosWithThreads) {
        int highest = 0;
        for (int i = 0; i < requests; i++) {
            if (queued) {
                limit.queued();
            }
            long nanos = nanosWithThreads.applyAsLong(limit.limit());
            limit.completed((long) (nanos * (0.8 + 0.4 * random.nextDouble())), limit.limit());
            if (i >= requests - requests / 10) {
                highest = Math.max(highest, limit.limit());
            }
        }
        return highest;
    }

    @Test
    void requestsThatWaitTogetherGetMoreThreads() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        // a device with a queue: a request takes as long with more of them in flight
        serve(limit, 20 * LaneLimit.WINDOW, true, n -> 3_000_000);
        assertTrue(limit.limit() >= MIN + 15, "limit " + limit.limit());
        serve(limit, 200 * LaneLimit.WINDOW, true, n -> 3_000_000);
        assertEquals(MAX, limit.limit(), "up to the maximum, and never more");
    }

    @Test
    void aServerThatGetsMoreDoneWithMoreInFlightGetsTheThreadsThatPay() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        // each request in flight makes every one 10 % slower, and the server does more in all:
        // 2 threads 2 per 100 us, 24 threads 24 per 320 us
        int highest = serve(limit, 500 * LaneLimit.WINDOW, true, n -> 100_000L + 10_000L * (n - MIN));
        assertTrue(highest >= 16 && highest <= 32, "limit " + highest);
    }

    @Test
    void quickCacheHitsAmongSlowRequestsDoNotHoldTheLimitDown() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        // one request in 20, at random, is a cache hit; the rest wait on a device with a queue
        int highest = serve(limit, 300 * LaneLimit.WINDOW, true,
                n -> random.nextInt(20) == 0 ? 20_000 : 3_000_000);
        assertEquals(MAX, highest);
    }

    @Test
    void requestsThatContendStayNearOneThreadPerCpu() {
        // one file lock: each thread more makes every request slower, whatever the lane saw before
        LaneLimit contended = new LaneLimit(MIN, MAX);
        assertTrue(serve(contended, 2000 * LaneLimit.WINDOW, true, n -> 20_000L * n) <= MIN + 2,
                "limit " + contended.limit());
        // a throttle serving one at a time: a request waits for those ahead of it
        LaneLimit throttled = new LaneLimit(MIN, MAX);
        assertTrue(serve(throttled, 2000 * LaneLimit.WINDOW, true, n -> 500_000L * n) <= MIN + 2,
                "limit " + throttled.limit());
    }

    /** A limit that requests waiting on a device with a queue took to the maximum. */
    private LaneLimit grownToMax() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        serve(limit, 100 * LaneLimit.WINDOW, true, n -> 3_000_000);
        assertEquals(MAX, limit.limit());
        return limit;
    }

    @Test
    void aLimitThatGrewComesBackWhenRequestsStartToContend() {
        LaneLimit limit = grownToMax();
        // the device now serves one at a time: the time grows with the threads from the start
        assertTrue(serve(limit, 1000 * LaneLimit.WINDOW, true, n -> 1_000_000L * n) <= MIN + 2,
                "limit " + limit.limit());
    }

    @Test
    void aLimitThatGrewComesDownInALullOfContendingRequests() {
        LaneLimit limit = grownToMax();
        // then four requests at a time that contend: far fewer run than the limit allows, and
        // none waits for a thread while it is over four
        for (int i = 0; i < 300 * LaneLimit.WINDOW; i++) {
            int running = Math.min(4, limit.limit());
            if (running < 4) {
                limit.queued();
            }
            limit.completed((long) (1_000_000L * running * (0.8 + 0.4 * random.nextDouble())), running);
        }
        assertTrue(limit.limit() <= MIN + 2, "limit " + limit.limit());
    }

    @Test
    void noThreadIsAddedWhileNoRequestWaitsForOne() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        assertEquals(MIN, serve(limit, 100 * LaneLimit.WINDOW, false, n -> 3_000_000));
    }
}
