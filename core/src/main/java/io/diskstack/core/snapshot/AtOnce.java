package io.diskstack.core.snapshot;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs one step per image at the same time, a thread each: the steps wait for the disk (the
 * syncs of different files), so three quorum children take about as long as one.
 */
final class AtOnce {
    private AtOnce() {}

    interface Step<T, R> {
        R run(T item) throws IOException;
    }

    /** What one step returned, or how it failed. */
    record Outcome<R>(R value, Throwable failure) {}

    /** Runs the step on every item, the first on the calling thread; returns once all are done, in item order. */
    static <T, R> List<Outcome<R>> each(List<T> items, Step<T, R> step) {
        List<Outcome<R>> out = new ArrayList<>(items.size());
        List<Thread> threads = new ArrayList<>();
        @SuppressWarnings("unchecked")
        Outcome<R>[] results = new Outcome[items.size()];
        for (int i = 1; i < items.size(); i++) {
            int at = i;
            Thread t = new Thread(() -> results[at] = attempt(step, items.get(at)), "snapshot-" + i);
            threads.add(t);
            t.start();
        }
        if (!items.isEmpty()) {
            results[0] = attempt(step, items.get(0));
        }
        boolean interrupted = false;
        for (Thread t : threads) {
            while (true) {
                try {
                    t.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        for (Outcome<R> r : results) {
            out.add(r);
        }
        return out;
    }

    /** Runs the step on every item; returns the results in item order, or throws the first failure. */
    static <T, R> List<R> all(List<T> items, Step<T, R> step) throws IOException {
        List<R> values = new ArrayList<>();
        Throwable first = null;
        for (Outcome<R> o : each(items, step)) {
            if (o.failure() == null) {
                values.add(o.value());
            } else if (first == null) {
                first = o.failure();
            } else {
                first.addSuppressed(o.failure());
            }
        }
        if (first != null) {
            throw rethrow(first);
        }
        return values;
    }

    /** A step running on a thread of its own, started by {@link #start}. */
    static final class Running {
        private final Thread thread;
        private volatile Throwable failure;

        private Running(String name, IoAction action) {
            thread = new Thread(() -> {
                try {
                    action.run();
                } catch (Throwable t) {
                    failure = t;
                }
            }, name);
            thread.setDaemon(true);
            thread.start();
        }

        /** Waits for the step to end; throws its failure as it was. */
        void join() throws IOException {
            awaitEnd();
            if (failure != null) {
                throw rethrow(failure);
            }
        }

        /**
         * On a failure path: waits for the step to end (so nothing runs on after it) and adds
         * its own failure, if any, to {@code primary}.
         */
        void awaitEnd(Throwable primary) {
            awaitEnd();
            if (failure != null && failure != primary) {
                primary.addSuppressed(failure);
            }
        }

        /** Waits for the step to end, whatever it did. */
        void awaitEnd() {
            boolean interrupted = false;
            while (true) {
                try {
                    thread.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    interface IoAction {
        void run() throws IOException;
    }

    /** Starts {@code action} on a thread of its own, beside what the caller does next. */
    static Running start(String name, IoAction action) {
        return new Running(name, action);
    }

    /** Throws a step's failure as it was: an IOException, a RuntimeException or an Error. */
    static IOException rethrow(Throwable t) {
        if (t instanceof IOException e) {
            return e;
        }
        if (t instanceof RuntimeException e) {
            throw e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IOException(t);
    }

    private static <T, R> Outcome<R> attempt(Step<T, R> step, T item) {
        try {
            return new Outcome<>(step.run(item), null);
        } catch (Throwable t) {
            return new Outcome<>(null, t);
        }
    }
}
