package io.diskstack.core;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/** Waits that must not end early: an interrupt is kept for the caller, not acted on. */
public final class Uninterruptibly {
    private Uninterruptibly() {}

    /**
     * The result of {@code future} once it is done, however often the thread is interrupted
     * meanwhile; its failure is thrown as it was (a checked one wrapped in IllegalStateException).
     */
    public static <T> T get(Future<T> future) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return future.get();
                } catch (InterruptedException e) {
                    interrupted = true;
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof RuntimeException r) {
                        throw r;
                    }
                    if (c instanceof Error err) {
                        throw err;
                    }
                    throw new IllegalStateException(c);
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
