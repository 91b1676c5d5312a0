package io.diskstack.core.job;

import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Keeps up to {@code depth} copies of distinct ranges in flight on threads of its own (as
 * qemu-img convert's parallel requests and QEMU mirror's in-flight buffers do): one copy waits on
 * its read while another writes, and a qcow2 target allocates for one while another's data goes
 * down. The job's thread plans, paces and submits; the first failure of a copy is thrown to it at
 * its next submit or {@link #drain()}. {@link #close()} waits for what is in flight, so nothing
 * writes to a target the job then discards.
 */
final class CopyPipeline implements AutoCloseable {
    /** Copies in flight: measured on qcow2 and raw targets, more gained nothing. */
    static final int DEPTH = 4;

    /** One copy of a range. */
    interface Copy {
        void run() throws IOException;
    }

    private final int depth;
    private final Semaphore slots;
    private final ExecutorService threads;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    CopyPipeline(String jobId, int depth) {
        this.depth = depth;
        this.slots = new Semaphore(depth);
        AtomicInteger n = new AtomicInteger();
        this.threads = Executors.newFixedThreadPool(depth, r -> {
            Thread t = new Thread(r, "job-" + jobId + "-copy-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /** Starts a copy once a slot is free; throws the failure of an earlier copy instead, if any. */
    void submit(Copy copy) throws IOException, InterruptedException {
        slots.acquire();
        try {
            rethrow();
        } catch (IOException | RuntimeException | Error e) {
            slots.release();
            throw e;
        }
        threads.execute(() -> {
            try {
                copy.run();
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            } finally {
                slots.release();
            }
        });
    }

    /** Waits until no copy is in flight; throws the first failure of any. */
    void drain() throws IOException, InterruptedException {
        slots.acquire(depth);
        slots.release(depth);
        rethrow();
    }

    private void rethrow() throws IOException {
        Throwable t = failure.get();
        if (t instanceof IOException e) {
            throw e;
        }
        if (t instanceof RuntimeException e) {
            throw e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        if (t != null) {
            throw new IOException(t);
        }
    }

    /** Waits for what is in flight (even when interrupted: a copy must not outlive its job), then ends the threads. */
    @Override
    public void close() {
        slots.acquireUninterruptibly(depth);
        slots.release(depth);
        threads.shutdown();
    }
}
