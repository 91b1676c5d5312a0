package io.diskstack.core.testing;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Work a test runs on a thread of its own. What the thread throws is kept and {@link #join()}
 * throws it again, so a failure on the thread fails the test instead of dying with the thread.
 */
public final class Background<T> {
    /** A task that may throw anything. */
    public interface Task {
        void run() throws Exception;
    }

    private final FutureTask<T> future;
    private final Thread thread;

    private Background(String name, Callable<T> body) {
        this.future = new FutureTask<>(body);
        this.thread = new Thread(future, name);
        thread.setDaemon(true);
    }

    /** Starts {@code task} on a new thread. */
    public static Background<Void> start(String name, Task task) {
        return call(name, () -> {
            task.run();
            return null;
        });
    }

    /** Starts {@code body} on a new thread; {@link #join()} returns its result. */
    public static <T> Background<T> call(String name, Callable<T> body) {
        Background<T> b = new Background<>(name, body);
        b.thread.start();
        return b;
    }

    public Thread thread() {
        return thread;
    }

    /** True once the task has returned or thrown. */
    public boolean isDone() {
        return future.isDone();
    }

    /** Waits up to 30 s for the task; returns its result or throws what it threw. */
    public T join() throws Exception {
        return join(30, TimeUnit.SECONDS);
    }

    public T join(long timeout, TimeUnit unit) throws Exception {
        try {
            return future.get(timeout, unit);
        } catch (TimeoutException e) {
            return fail("thread '" + thread.getName() + "' still running after " + timeout + " " + unit);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof Exception x) {
                throw x;
            }
            if (cause instanceof Error x) {
                throw x;
            }
            throw e;
        }
    }

    /**
     * Waits until the task has finished or its thread is blocked (waiting on a lock, a condition
     * or a latch). With every other thread of the test held still, a blocked thread stays
     * blocked: the test can then check that it has not finished.
     */
    public void awaitBlockedOrDone() {
        Await.until("thread '" + thread.getName() + "' to block or finish", () -> {
            Thread.State s = thread.getState();
            return isDone() || s == Thread.State.WAITING || s == Thread.State.TIMED_WAITING
                    || s == Thread.State.BLOCKED;
        });
    }

    /** {@link #awaitBlockedOrDone()}, then fails if the task finished: it should be waiting. */
    public void assertBlocked(String why) throws Exception {
        awaitBlockedOrDone();
        if (isDone()) {
            join();
            fail("thread '" + thread.getName() + "' finished, but " + why);
        }
    }
}
