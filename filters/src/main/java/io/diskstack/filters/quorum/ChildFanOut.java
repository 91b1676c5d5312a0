package io.diskstack.filters.quorum;

import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Runs one request on every child at once: the calling thread takes child 0 and pool threads the
 * others, and the call returns only when every child is done (the caller's buffer is lent to
 * them). Pool threads are never interrupted: an interrupt would close a FileChannel below.
 *
 * <p>When children are quick (4 KiB into the page cache), the caller is done with child 0 before
 * a woken pool thread gets a CPU, and takes the other children itself. After {@link #CALLER_ONLY}
 * such calls in a row it stops waking pool threads, whose wake-ups cost more than the writes
 * (quorum of three raw files, random 4 KiB at QD16: writes +10 %, reads +15 %), except on one
 * call in {@link #PROBE_EVERY}: when children get slow (a network, a busy disk), pool threads take
 * some while the caller is on child 0, and the calls are parallel again.
 */
final class ChildFanOut implements AutoCloseable {
    interface ChildTask {
        void run(int child) throws IOException;
    }

    /** Offloaded calls in a row whose children all ended up on the caller, after which it stops offloading... */
    static final int CALLER_ONLY = 8;
    /** ...except on every this many calls (a power of two), to see whether children got slower. */
    static final int PROBE_EVERY = 16;

    private final ExecutorService pool;
    // racy on purpose: a stale count only moves one call between the caller and the pool
    private int callerOnly;
    private int probes;

    ChildFanOut(String nodeName) {
        this(pool(nodeName));
    }

    private static ExecutorService pool(String nodeName) {
        AtomicInteger count = new AtomicInteger();
        return Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "quorum-" + nodeName + "-" + count.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /** With the pool given (a test's). */
    ChildFanOut(ExecutorService pool) {
        this.pool = pool;
    }

    /**
     * Runs {@code task} for children 0 … n-1 in parallel and waits for all of them.
     *
     * @return per child, its IOException or RuntimeException, or null if it succeeded
     */
    Exception[] run(int n, ChildTask task) {
        Call call = new Call(n, task);
        boolean offload = callerOnly < CALLER_ONLY || (probes++ & (PROBE_EVERY - 1)) == 0;
        for (int i = 1; offload && i < n; i++) {
            try {
                pool.execute(call);
            } catch (RejectedExecutionException e) {
                call.runNext(false);
            }
        }
        try {
            call.failures[0] = call(task, 0);
        } catch (Error e) {
            call.failed(e);
        }
        while (call.runNext(false)) {
            // a child no pool thread has taken yet: on a busy machine a woken thread may not get
            // a CPU before this one is done with child 0
        }
        call.awaitOthers();
        if (offload) {
            callerOnly = call.pooled ? 0 : callerOnly + 1;
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
        /** A pool thread ran a child: set, as the rest, under this lock; read after {@link #awaitOthers}. */
        boolean pooled;
        Error fatal;

        Call(int n, ChildTask task) {
            this.task = task;
            this.failures = new Exception[n];
            this.pending = n - 1;
        }

        @Override
        public void run() {
            runNext(true);
        }

        synchronized void failed(Error e) {
            fatal = e;
        }

        /** Runs the next child nobody has taken, on a pool thread or not; false if none is left. */
        boolean runNext(boolean onPool) {
            int child = next.getAndIncrement();
            if (child >= failures.length) {
                return false;
            }
            Exception failure = null;
            Error error = null;
            try {
                failure = call(task, child);
            } catch (Error e) {
                error = e;
            } finally {
                synchronized (this) {
                    failures[child] = failure;
                    pooled |= onPool;
                    if (error != null) {
                        fatal = error;
                    }
                    if (--pending == 0) {
                        notifyAll();
                    }
                }
            }
            return true;
        }

        /**
         * Waits for children 1 … n-1 (some may have run on the caller); an interrupt is kept for
         * later, never passed on.
         */
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
