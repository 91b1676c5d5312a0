package io.diskstack.filters.quorum;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/** When the fan-out wakes pool threads and when the caller runs every child itself. */
class ChildFanOutTest {
    private static final int CHILDREN = 3;
    private static final int POOL_THREADS = 4;

    /** A pool whose threads are all busy until {@link #release}: nothing submitted runs before the caller took it. */
    private final ThreadPoolExecutor pool = (ThreadPoolExecutor) Executors.newFixedThreadPool(POOL_THREADS);
    private final CountDownLatch release = new CountDownLatch(1);

    private ChildFanOut stuckFanOut() {
        for (int i = 0; i < POOL_THREADS; i++) {
            pool.execute(() -> awaitQuietly(release, 60_000));
        }
        return new ChildFanOut(pool);
    }

    /** Calls with quick children until the fan-out runs them all on the caller; returns the pool's tasks since. */
    private long quickCalls(ChildFanOut fanOut) {
        for (int call = 0; call < ChildFanOut.CALLER_ONLY; call++) {
            runOnce(fanOut);
        }
        assertEquals(POOL_THREADS + ChildFanOut.CALLER_ONLY * (CHILDREN - 1), pool.getTaskCount(),
                "every call so far woke the pool for children 1 and 2");
        long before = pool.getTaskCount();
        for (int call = 0; call < 4 * ChildFanOut.PROBE_EVERY; call++) {
            runOnce(fanOut);
        }
        return pool.getTaskCount() - before;
    }

    @Test
    void quickChildrenStayOnTheCallerButForAProbe() throws Exception {
        ChildFanOut fanOut = stuckFanOut();
        try {
            assertEquals(4 * (CHILDREN - 1), quickCalls(fanOut), "only the probes woke the pool");
        } finally {
            release.countDown();
            fanOut.close();
        }
        assertTrue(pool.awaitTermination(10, TimeUnit.SECONDS), "the late wake-ups find nothing left and end");
    }

    @Test
    void slowChildrenRunInParallelAgainAfterAProbe() throws Exception {
        ChildFanOut fanOut = stuckFanOut();
        try {
            quickCalls(fanOut);
            release.countDown();
            // children that end only once all three run at the same time, or give up after 100 ms
            int together = 0;
            for (int call = 0; call < 3 * ChildFanOut.PROBE_EVERY; call++) {
                CountDownLatch started = new CountDownLatch(CHILDREN);
                AtomicIntegerArray met = new AtomicIntegerArray(CHILDREN);
                fanOut.run(CHILDREN, child -> {
                    started.countDown();
                    if (awaitQuietly(started, 100)) {
                        met.set(child, 1);
                    }
                });
                together += met.get(0) + met.get(1) + met.get(2) == CHILDREN ? 1 : 0;
            }
            assertTrue(together >= ChildFanOut.PROBE_EVERY, "calls whose children ran at once: " + together);
        } finally {
            release.countDown();
            fanOut.close();
        }
    }

    @Test
    void anErrorInChildZeroOnTheCallerIsThrownAfterTheOthersRan() {
        ChildFanOut fanOut = stuckFanOut();
        try {
            quickCalls(fanOut);
            AtomicIntegerArray ran = new AtomicIntegerArray(CHILDREN);
            AssertionError error = new AssertionError("child 0");
            AssertionError thrown = assertTimeoutPreemptively(Duration.ofSeconds(10),
                    () -> assertThrows(AssertionError.class, () -> fanOut.run(CHILDREN, child -> {
                        ran.incrementAndGet(child);
                        if (child == 0) {
                            throw error;
                        }
                    })));
            assertSame(error, thrown);
            assertEquals(1, ran.get(1));
            assertEquals(1, ran.get(2));
        } finally {
            release.countDown();
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
                assertNull(failures[0]);
                assertEquals("child 1", failures[1].getMessage());
                assertNull(failures[2]);
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

    private static boolean awaitQuietly(CountDownLatch latch, long millis) {
        try {
            return latch.await(millis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
