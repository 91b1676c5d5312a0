package io.diskstack.core.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.Errno;
import io.diskstack.core.testing.TestGraphs;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The job lifecycle and its controls, on an injected clock. */
class BlockJobTest {
    @TempDir
    Path dir;

    /** Time that passes only when a job waits: a speed limit is judged exactly, without the wall clock. */
    static final class FakeClock implements JobClock {
        final AtomicLong now = new AtomicLong();

        @Override
        public long nanoTime() {
            return now.get();
        }

        @Override
        public void sleepNanos(long nanos) {
            now.addAndGet(nanos);
        }
    }

    /** Copies {@code chunks} pieces of 1 MiB, each when the test lets it (or at once). */
    static class CountingJob extends BlockJob {
        final Semaphore steps;
        final int chunks;
        final AtomicInteger undone = new AtomicInteger();
        final CountDownLatch readyReached = new CountDownLatch(1);
        final boolean waitsForComplete;

        CountingJob(String id, List<BlockNode> nodes, JobClock clock, long speed, int chunks, Semaphore steps,
                    boolean waitsForComplete) {
            super(id, "test", nodes, clock, speed);
            this.chunks = chunks;
            this.steps = steps;
            this.waitsForComplete = waitsForComplete;
        }

        @Override
        protected void work() throws Exception {
            setTotal(chunks * (1L << 20));
            for (int i = 0; i < chunks; i++) {
                checkpoint();
                if (steps != null) {
                    steps.acquire();
                }
                copied(1 << 20);
            }
            if (waitsForComplete) {
                ready();
                readyReached.countDown();
                while (!completeAsked()) {
                    idle();
                }
            }
        }

        @Override
        protected void undo() {
            undone.incrementAndGet();
        }
    }

    @Test
    void aSpeedLimitMakesTheCopyTakeItsTimeOnTheInjectedClock() throws Exception {
        FakeClock clock = new FakeClock();
        CountingJob job = new CountingJob("j", List.of(), clock, 10L << 20, 50, null, false);
        JobRegistry jobs = new JobRegistry();
        jobs.start(job);
        assertEquals(JobStatus.CONCLUDED, job.await(10_000));
        // 50 MiB at 10 MiB/s: 5 s of job time, give or take one chunk's share (0.1 s)
        double seconds = clock.now.get() / 1e9;
        assertTrue(Math.abs(seconds - 5.0) <= 0.1, "took " + seconds + " s");
        assertEquals("52428800 52428800 100%", job.progress());
    }

    @Test
    void pauseStopsProgressResumeGoesOnCancelUndoes() throws Exception {
        Semaphore steps = new Semaphore(0);
        CountingJob job = new CountingJob("j", List.of(), new FakeClock(), 0, 10, steps, false);
        JobRegistry jobs = new JobRegistry();
        jobs.start(job);
        steps.release(2);
        // paused while it waits for its third piece (past that piece's checkpoint)
        waitFor(() -> job.done() == 2L << 20 && steps.hasQueuedThreads());
        job.pause();
        assertEquals(JobStatus.PAUSED, job.status());
        steps.release(5);
        // the job finishes the piece it was in, then it stops at the next checkpoint
        waitFor(() -> job.done() == 3L << 20 && steps.availablePermits() == 4);
        long paused = job.done();
        assertTrue(paused <= 3L << 20, "at most the piece in flight: " + paused);
        Thread.sleep(200);
        assertEquals(paused, job.done(), "no progress while paused");
        job.resume();
        waitFor(() -> job.done() == 7L << 20);
        assertEquals(JobStatus.RUNNING, job.status());
        assertEquals(Errno.EINVAL, assertThrows(BlockIOException.class, job::complete).errno(), "not ready");
        job.cancel();
        steps.release(10);
        assertEquals(JobStatus.ABORTED, job.await(10_000));
        assertEquals("cancelled", job.error());
        assertEquals(1, job.undone.get());
        assertEquals(Errno.EINVAL, assertThrows(BlockIOException.class, job::resume).errno());
    }

    @Test
    void aReadyJobWaitsForComplete() throws Exception {
        CountingJob job = new CountingJob("j", List.of(), new FakeClock(), 0, 3, null, true);
        new JobRegistry().start(job);
        assertTrue(job.readyReached.await(10, TimeUnit.SECONDS));
        assertEquals(JobStatus.READY, job.status());
        job.complete();
        assertEquals(JobStatus.CONCLUDED, job.await(10_000));
        assertEquals(0, job.undone.get());
    }

    @Test
    void aSecondJobOnTheSameNodeOrIdIsRefused() throws Exception {
        try (var graph = TestGraphs.newGraph(dir)) {
            BlockNode m = graph.open(TestGraphs.opts("driver", "memory", "node-name", "m0"));
            Semaphore steps = new Semaphore(0);
            JobRegistry jobs = new JobRegistry();
            CountingJob first = new CountingJob("a", List.of(m), new FakeClock(), 0, 1, steps, false);
            jobs.start(first);
            BlockIOException e = assertThrows(BlockIOException.class,
                    () -> jobs.start(new CountingJob("b", List.of(m), new FakeClock(), 0, 1, null, false)));
            assertEquals(Errno.EBUSY, e.errno());
            assertEquals("job 'b': node 'm0' is in use by job 'a' (test)", e.getMessage());
            e = assertThrows(BlockIOException.class,
                    () -> jobs.start(new CountingJob("a", List.of(), new FakeClock(), 0, 1, null, false)));
            assertEquals("job 'a' is running already", e.getMessage());
            steps.release();
            assertEquals(JobStatus.CONCLUDED, first.await(10_000));
            CountingJob again = new CountingJob("a", List.of(m), new FakeClock(), 0, 1, null, false);
            jobs.start(again); // a finished job's id and nodes are free again
            assertEquals(JobStatus.CONCLUDED, again.await(10_000));
            assertEquals(List.of(again), jobs.list(), "the finished job with that id made way for the new one");
        }
    }

    @Test
    void aFailingJobAbortsWithItsMessageAndUndoes() throws Exception {
        BlockJob job = new CountingJob("j", List.of(), new FakeClock(), 0, 1, null, false) {
            @Override
            protected void work() throws Exception {
                throw new java.io.IOException("the target is full");
            }
        };
        new JobRegistry().start(job);
        assertEquals(JobStatus.ABORTED, job.await(10_000));
        assertEquals("the target is full", job.error());
        assertEquals(1, ((CountingJob) job).undone.get());
    }

    private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out");
            }
            Thread.sleep(5);
        }
    }
}
