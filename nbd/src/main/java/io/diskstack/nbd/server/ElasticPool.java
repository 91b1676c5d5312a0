package io.diskstack.nbd.server;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Runs requests on one thread per CPU while they compute, and on more only while some wait.
 * Quick requests (a 4 KiB write into the page cache) gain nothing from more threads than CPUs:
 * the extra ones queue in the scheduler and on the image file's lock, where some wait many
 * milliseconds (on 2 vCPUs, 4 KiB random writes at queue depth 32 from one client: p99 16 ms
 * with 64 threads, 4 ms with 4). A request running longer than {@code slowNanos} is taken to be
 * waiting (a cache miss on a slow device, a throttle) rather than computing, and does not count
 * against the CPUs: up to {@code maxThreads} run while that many wait. With requests queued, one
 * spare thread looks again every {@code slowNanos}, so a queue behind requests that all got
 * stuck moves on without a new arrival. Idle threads stay for a while, so a burst does not start
 * new ones.
 */
final class ElasticPool implements Executor {
    private static final Logger LOG = Logger.getLogger(ElasticPool.class.getName());
    private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(30);

    private final int runners;
    private final int maxThreads;
    private final long slowNanos;
    private final ThreadFactory threadFactory;
    private final LongSupplier clock;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final ArrayDeque<Runnable> queue = new ArrayDeque<>();
    /** Every live thread; {@link Worker#since} is when its request started, 0 between requests. */
    private final List<Worker> workers = new ArrayList<>();
    private int active;
    private int idle;
    /** Idle threads that look again after {@code slowNanos} because requests are queued. */
    private int spares;
    private boolean shutdown;

    private static final class Worker {
        long since;
    }

    ElasticPool(int runners, int maxThreads, long slowNanos, ThreadFactory threadFactory, LongSupplier clock) {
        if (runners < 1 || maxThreads <= runners) {
            throw new IllegalArgumentException("runners " + runners + ", max " + maxThreads);
        }
        this.runners = runners;
        this.maxThreads = maxThreads;
        this.slowNanos = slowNanos;
        this.threadFactory = threadFactory;
        this.clock = clock;
    }

    @Override
    public void execute(Runnable task) {
        lock.lock();
        try {
            if (shutdown) {
                throw new RejectedExecutionException("the pool is shut down");
            }
            queue.addLast(task);
            dispatch(clock.getAsLong());
            if (workers.isEmpty()) {
                queue.removeLastOccurrence(task);
                throw new RejectedExecutionException("no thread could be started for the request");
            }
        } finally {
            lock.unlock();
        }
    }

    /** Refuses new requests; those queued still run, then the threads end. */
    void shutdown() {
        lock.lock();
        try {
            shutdown = true;
            work.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Threads alive now (for tests). */
    int threads() {
        lock.lock();
        try {
            return workers.size();
        } finally {
            lock.unlock();
        }
    }

    /** Threads waiting for work now (for tests). */
    int idleThreads() {
        lock.lock();
        try {
            return idle;
        } finally {
            lock.unlock();
        }
    }

    /** Under the lock: how many requests may run now, one per CPU plus one per waiting request. */
    private int allowed(long now) {
        if (active < runners) {
            return runners; // no need to look for waiting ones
        }
        int waiting = 0;
        for (Worker w : workers) {
            if (w.since != 0 && now - w.since > slowNanos) {
                waiting++;
            }
        }
        return Math.min(maxThreads, runners + waiting);
    }

    /**
     * Under the lock: wakes an idle thread if a queued request may run, or so that one looks
     * again after {@code slowNanos} (there is always such a spare while requests are queued), or
     * starts a thread. At most one thread more lives than may run, so a burst starts only the
     * missing ones; a thread between two requests looks at the queue before it waits, so no
     * request is left behind. A thread that cannot start is logged; the others go on.
     */
    private void dispatch(long now) {
        if (queue.isEmpty()) {
            return;
        }
        int allowed = allowed(now);
        if (idle > 0 && (active < allowed || spares == 0)) {
            work.signal();
        } else if (idle == 0 && workers.size() <= allowed && workers.size() < maxThreads) {
            Worker w = new Worker();
            workers.add(w);
            try {
                threadFactory.newThread(() -> work(w)).start();
            } catch (RuntimeException | Error e) {
                workers.remove(w);
                LOG.warning("cannot start a request thread (" + workers.size() + " running): " + e);
            }
        }
    }

    private void work(Worker self) {
        lock.lock();
        try {
            while (true) {
                long now = clock.getAsLong();
                if (!queue.isEmpty() && active < allowed(now)) {
                    Runnable next = queue.pollFirst();
                    active++;
                    self.since = now == 0 ? 1 : now;
                    // keep a spare looking while requests stay queued
                    dispatch(now);
                    lock.unlock();
                    try {
                        Thread.interrupted(); // an interrupt a request kept is not the next one's
                        next.run();
                    } catch (RuntimeException | Error e) {
                        report(e);
                    } finally {
                        lock.lock();
                        active--;
                        self.since = 0;
                    }
                    continue;
                }
                if (shutdown && queue.isEmpty()) {
                    return;
                }
                // with requests queued that may not run yet, look again once a runner may be waiting
                boolean spare = !queue.isEmpty();
                idle++;
                if (spare) {
                    spares++;
                }
                long left;
                try {
                    left = work.awaitNanos(spare ? slowNanos : IDLE_NANOS);
                } catch (InterruptedException e) {
                    left = 0;
                } finally {
                    idle--;
                    if (spare) {
                        spares--;
                    }
                }
                if (left <= 0 && !spare && queue.isEmpty()) {
                    return;
                }
            }
        } finally {
            workers.remove(self);
            lock.unlock();
        }
    }

    private static void report(Throwable e) {
        Thread t = Thread.currentThread();
        try {
            t.getUncaughtExceptionHandler().uncaughtException(t, e);
        } catch (RuntimeException | Error ignored) {
            // the handler failed too: the thread must go on serving the queue
        }
    }
}
