package io.diskstack.filters.quorum;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/** When the fan-out wakes pool threads and when the caller runs every child itself. */
class ChildFanOutTest {
    private static final int CHILDREN = 3;

    @Test
    void quickChildrenStayOnTheCallerButForAProbe() throws Exception {
        // a pool whose one thread is busy: nothing submitted runs before the caller took it
        ThreadPoolExecutor stuck = (ThreadPoolExecutor) Executors.newFixedThreadPool(1);
        CountDownLatch release = new CountDownLatch(1);
        stuck.execute(() -> awaitQuietly(release));
        ChildFanOut fanOut = new ChildFanOut(stuck);
        for (int call = 0; call < ChildFanOut.CALLER_ONLY; call++) {
            runOnce(fanOut);
        }
        assertEquals(1 + ChildFanOut.CALLER_ONLY * (CHILDREN - 1), stuck.getTaskCount(),
                "every call so far woke the pool for children 1 and 2");
        long before = stuck.getTaskCount();
        int calls = 4 * ChildFanOut.PROBE_EVERY;
        for (int call = 0; call < calls; call++) {
            runOnce(fanOut);
        }
        assertEquals(4 * (CHILDREN - 1), stuck.getTaskCount() - before, "only the probes woke the pool");
        release.countDown();
        fanOut.close();
        assertTrue(stuck.awaitTermination(10, TimeUnit.SECONDS), "the late wake-ups find nothing left and end");
    }

    @Test
    void slowChildrenRunInParallelAgainAfterAProbe() throws Exception {
        ChildFanOut fanOut = new ChildFanOut("q0");
        try {
            for (int call = 0; call < 4 * ChildFanOut.PROBE_EVERY; call++) {
                runOnce(fanOut);
            }
            // children that finish only once all three run at the same time (or give up after 50 ms)
            int parallel = 0;
            for (int call = 0; call < 3 * ChildFanOut.PROBE_EVERY; call++) {
                CountDownLatch together = new CountDownLatch(CHILDREN);
                AtomicIntegerArray met = new AtomicIntegerArray(CHILDREN);
                fanOut.run(CHILDREN, child -> {
                    together.countDown();
                    if (awaitQuietly(together, 50)) {
                        met.set(child, 1);
                    }
                });
                parallel = met.get(0) + met.get(1) + met.get(2) == CHILDREN ? parallel + 1 : 0;
            }
            assertTrue(parallel >= ChildFanOut.PROBE_EVERY, "the last calls ran their children at once: " + parallel);
        } finally {
            fanOut.close();
        }
    }

    @Test
    void failuresArePerChildWhereverTheChildRan() {
        ChildFanOut fanOut = new ChildFanOut("q0");
        try {
            for (int call = 0; call < 2 * ChildFanOut.PROBE_EVERY; call++) {
                Exception[] failures = fanOut.run(CHILDREN, child -> {
                    if (child == 1) {
                        throw new IOException("child 1");
                    }
                });
                assertEquals(null, failures[0]);
                assertEquals("child 1", failures[1].getMessage());
                assertEquals(null, failures[2]);
            }
        } finally {
            fanOut.close();
        }
    }

    /** One call whose children record that they ran; every child runs exactly once. */
    private static void runOnce(ChildFanOut fanOut) {
        AtomicIntegerArray ran = new AtomicIntegerArray(CHILDREN);
        Exception[] failures = fanOut.run(CHILDREN, ran::incrementAndGet);
        assertArrayEquals(new Exception[CHILDREN], failures);
        for (int i = 0; i < CHILDREN; i++) {
            assertEquals(1, ran.get(i), "child " + i);
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        awaitQuietly(latch, 60_000);
    }

    private static boolean awaitQuietly(CountDownLatch latch, long millis) {
        try {
            return latch.await(millis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
