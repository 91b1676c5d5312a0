package io.diskstack.filters.quorum;

import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs one request on every child at once: the calling thread takes child 0, pool threads the
 * others, and the call returns only when every child is done (the caller's buffer is lent to
 * them). Pool threads are never interrupted: an interrupt would close a FileChannel below.
 */
final class ChildFanOut implements AutoCloseable {
    interface ChildTask {
        void run(int child) throws IOException;
    }

    private final ExecutorService pool;

    ChildFanOut(String nodeName) {
        AtomicInteger count = new AtomicInteger();
        this.pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "quorum-" + nodeName + "-" + count.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Runs {@code task} for children 0 … n-1 in parallel and waits for all of them.
     *
     * @return per child, its IOException or RuntimeException, or null if it succeeded
     */
    Exception[] run(int n, ChildTask task) {
        Call call = new Call(n, task);
        for (int i = 1; i < n; i++) {
            try {
                pool.execute(call);
            } catch (RejectedExecutionException e) {
                call.run();
            }
        }
        try {
            call.failures[0] = call(task, 0);
        } finally {
            call.awaitOthers();
        }
        if (call.fatal != null) {
            throw call.fatal;
        }
        return call.failures;
    }

    /**
     * One request's fan-out, and the one Runnable every pool thread runs for it: each run takes
     * the next child (1 … n-1), so a request costs one object, not a task and a latch per child.
     */
    private static final class Call implements Runnable {
        final ChildTask task;
        final Exception[] failures;
        private final AtomicInteger next = new AtomicInteger(1);
        private int pending;
        Error fatal;

        Call(int n, ChildTask task) {
            this.task = task;
            this.failures = new Exception[n];
            this.pending = n - 1;
        }

        @Override
        public void run() {
            int child = next.getAndIncrement();
            Exception failure = null;
            Error error = null;
            try {
                failure = call(task, child);
            } catch (Error e) {
                error = e;
            } finally {
                synchronized (this) {
                    failures[child] = failure;
                    if (error != null) {
                        fatal = error;
                    }
                    if (--pending == 0) {
                        notifyAll();
                    }
                }
            }
        }

        /** Waits for children 1 … n-1; an interrupt is kept for later, never passed on. */
        synchronized void awaitOthers() {
            boolean interrupted = false;
            while (pending > 0) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static Exception call(ChildTask task, int child) {
        try {
            task.run(child);
            return null;
        } catch (IOException | RuntimeException e) {
            return e;
        }
    }

    /** Lets running child requests finish; never interrupts them. */
    @Override
    public void close() {
        pool.shutdown();
    }
}
