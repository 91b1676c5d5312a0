package io.diskstack.filters.quorum;

import java.io.IOException;
import java.util.concurrent.CountDownLatch;
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
        Exception[] failures = new Exception[n];
        Error[] fatal = new Error[1];
        CountDownLatch done = new CountDownLatch(n - 1);
        for (int i = 1; i < n; i++) {
            int child = i;
            Runnable r = () -> {
                try {
                    failures[child] = call(task, child);
                } catch (Error e) {
                    fatal[0] = e;
                } finally {
                    done.countDown();
                }
            };
            try {
                pool.execute(r);
            } catch (RejectedExecutionException e) {
                r.run();
            }
        }
        try {
            failures[0] = call(task, 0);
        } finally {
            awaitUninterruptibly(done);
        }
        if (fatal[0] != null) {
            throw fatal[0];
        }
        return failures;
    }

    private static Exception call(ChildTask task, int child) {
        try {
            task.run(child);
            return null;
        } catch (IOException | RuntimeException e) {
            return e;
        }
    }

    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Lets running child requests finish; never interrupts them. */
    @Override
    public void close() {
        pool.shutdown();
    }
}
