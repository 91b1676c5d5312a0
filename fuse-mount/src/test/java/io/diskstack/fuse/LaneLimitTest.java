package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.function.IntToLongFunction;
import org.junit.jupiter.api.Test;

/**
 * The lane's limit on synthetic request times: the real lanes run under every mount test, and
 * their effect on the tail latency is measured by scripts/bench.
 */
class LaneLimitTest {
    private static final int MIN = 2;
    private static final int MAX = 64;

    /** Serves windows of requests whose time depends on the limit; every request waited for a thread if {@code queued}. */
    private static void serve(LaneLimit limit, int windows, boolean queued, IntToLongFunction nanosAtLimit) {
        for (int w = 0; w < windows; w++) {
            for (int i = 0; i < LaneLimit.WINDOW; i++) {
                if (queued) {
                    limit.queued();
                }
                // one request in a window is as quick as the lane can be: the least time stays known
                limit.completed(i == 0 ? 20_000 : nanosAtLimit.applyAsLong(limit.limit()));
            }
        }
    }

    @Test
    void requestsThatWaitTogetherGetMoreThreads() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        serve(limit, 10, true, n -> 30_000); // a device with a queue: a request takes as long with more of them
        assertEquals(MIN + 10, limit.limit());
        serve(limit, 100, true, n -> 30_000);
        assertEquals(MAX, limit.limit(), "never more than the maximum");
    }

    @Test
    void requestsThatContendKeepOneThreadPerCpu() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        // each thread more makes every request slower (one file lock): the time grows with the limit
        serve(limit, 200, true, n -> 20_000L * n * n);
        assertEquals(MIN, limit.limit());
    }

    @Test
    void aLimitThatGrewComesBackWhenRequestsStartToContend() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        serve(limit, 30, true, n -> 30_000);
        assertEquals(MIN + 30, limit.limit());
        serve(limit, 10, true, n -> 200_000);
        assertEquals(MIN + 20, limit.limit(), "one down per window over twice the least time");
        serve(limit, 100, true, n -> 200_000);
        assertEquals(MIN, limit.limit(), "never under one per CPU");
    }

    @Test
    void noThreadIsAddedWhileNoRequestWaitsForOne() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        serve(limit, 50, false, n -> 30_000);
        assertEquals(MIN, limit.limit());
    }

    @Test
    void theLeastTimeIsMeasuredAfresh() {
        LaneLimit limit = new LaneLimit(MIN, MAX);
        // a lane that was quick, then serves a slower device that still takes requests in parallel
        serve(limit, 5, true, n -> 30_000);
        assertEquals(MIN + 5, limit.limit());
        slowWindows(limit, 3);
        assertEquals(MIN + 2, limit.limit(), "slower than twice the old least time: one down per window");
        slowWindows(limit, LaneLimit.MIN_WINDOWS);
        int measuredAgain = limit.limit();
        slowWindows(limit, 10);
        assertEquals(measuredAgain + 10, limit.limit(), "the slow device's own time is the least now: up again");
    }

    private static void slowWindows(LaneLimit limit, int windows) {
        for (int w = 0; w < windows; w++) {
            for (int i = 0; i < LaneLimit.WINDOW; i++) {
                limit.queued();
                limit.completed(5_000_000);
            }
        }
    }
}
