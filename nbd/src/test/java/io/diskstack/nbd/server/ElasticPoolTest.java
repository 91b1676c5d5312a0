package io.diskstack.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The pool's rule on an injected clock: one request per CPU while requests compute, one more
 * for each that has run longer than the slow mark, never more than the maximum. The NBD server
 * tests against real peers (fio verify at queue depth 32, qemu-img, nbdcopy) run on it too.
 */
class ElasticPoolTest {
    private static final long SLOW = TimeUnit.MILLISECONDS.toNanos(2);
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private final List<Throwable> uncaught = new CopyOnWriteArrayList<>();
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger mostRunning = new AtomicInteger();
    private final CountDownLatch release = new CountDownLatch(1);
    private ElasticPool pool;

    private ElasticPool pool(int runners, int max) {
        pool = new ElasticPool(runners, max, SLOW, r -> {
            Thread t = new Thread(r, "elastic-test");
            t.setDaemon(true);
            t.setUncaughtExceptionHandler((th, e) -> uncaught.add(e));
            return t;
        }, now::get);
        return pool;
    }

    @AfterEach
    void end() {
        release.countDown();
        if (pool != null) {
            pool.shutdown();
        }
    }

    /** A request that blocks until the test lets go, counting how many run at once. */
    private Runnable held(CountDownLatch... started) {
        return heldUntil(release, started);
    }

    private Runnable heldUntil(CountDownLatch gate, CountDownLatch... started) {
        return () -> {
            mostRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
            for (CountDownLatch l : started) {
                l.countDown();
            }
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                running.decrementAndGet();
            }
        };
    }

    private static void await(CountDownLatch latch) throws InterruptedException {
        assertTrue(latch.await(10, TimeUnit.SECONDS), "requests did not start");
    }

    @Test
    void quickRequestsRunOnePerCpuAndTheRestWait() throws Exception {
        ElasticPool p = pool(2, 8);
        CountDownLatch two = new CountDownLatch(2);
        for (int i = 0; i < 10; i++) {
            p.execute(held(two));
        }
        await(two);
        // the clock stands still: the two running ones count as computing
        Thread.sleep(50);
        assertEquals(2, running.get());
        assertTrue(p.threads() <= 3, p.threads() + " threads for 2 runners");
        release.countDown();
        waitFor(() -> running.get() == 0 && mostRunning.get() == 2);
        assertEquals(2, mostRunning.get());
    }

    @Test
    void requestsThatWaitLetMoreRunWithoutANewArrival() throws Exception {
        ElasticPool p = pool(2, 5);
        CountDownLatch two = new CountDownLatch(2);
        CountDownLatch five = new CountDownLatch(5);
        for (int i = 0; i < 10; i++) {
            p.execute(held(two, five));
        }
        await(two);
        now.addAndGet(SLOW + 1);
        // two waiting: two more may run; they wait too once the clock moves again, up to the maximum
        waitFor(() -> running.get() == 4);
        now.addAndGet(SLOW + 1);
        await(five);
        Thread.sleep(50);
        assertEquals(5, running.get(), "the maximum holds");
        release.countDown();
        waitFor(() -> running.get() == 0);
        assertEquals(5, mostRunning.get());
    }

    @Test
    void threadsLeftIdleByAnEarlierBurstStillLookAgainForWaitingRequests() throws Exception {
        ElasticPool p = pool(2, 8);
        CountDownLatch firstGate = new CountDownLatch(1);
        for (int i = 0; i < 6; i++) {
            p.execute(heldUntil(firstGate));
        }
        waitFor(() -> running.get() == 2);
        now.addAndGet(SLOW + 1);
        waitFor(() -> running.get() == 4);
        now.addAndGet(SLOW + 1);
        waitFor(() -> running.get() == 6);
        firstGate.countDown();
        waitFor(() -> running.get() == 0 && p.idleThreads() == p.threads());
        assertTrue(p.threads() > 3, p.threads() + " threads");
        // more threads live now than may run: one of them must still look again while requests queue
        CountDownLatch two = new CountDownLatch(2);
        p.execute(held(two));
        p.execute(held(two));
        await(two);
        waitFor(() -> p.idleThreads() == p.threads() - 2);
        for (int i = 0; i < 8; i++) {
            p.execute(held());
        }
        Thread.sleep(20);
        assertEquals(2, running.get());
        now.addAndGet(SLOW + 1);
        waitFor(() -> running.get() == 4);
    }

    @Test
    void aFailingRequestGoesToTheHandlerAndThePoolGoesOn() throws Exception {
        ElasticPool p = pool(1, 2);
        p.execute(() -> {
            throw new IllegalStateException("boom");
        });
        CountDownLatch ran = new CountDownLatch(1);
        p.execute(ran::countDown);
        await(ran);
        assertEquals(1, uncaught.size());
        assertEquals("boom", uncaught.get(0).getMessage());
        uncaught.clear();
    }

    @Test
    void shutdownRefusesNewRequestsAndRunsTheQueuedOnes() throws Exception {
        ElasticPool p = pool(1, 2);
        CountDownLatch one = new CountDownLatch(1);
        p.execute(held(one));
        await(one);
        CountDownLatch queued = new CountDownLatch(1);
        p.execute(queued::countDown);
        p.shutdown();
        assertThrows(RejectedExecutionException.class, () -> p.execute(() -> { }));
        release.countDown();
        await(queued);
        waitFor(() -> p.threads() == 0);
    }

    @AfterEach
    void noneUncaught() {
        assertTrue(uncaught.isEmpty(), "uncaught: " + uncaught);
    }

    private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out");
            Thread.sleep(5);
        }
    }
}
