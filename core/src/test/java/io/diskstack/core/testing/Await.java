package io.diskstack.core.testing;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * Waits for a condition, for tests that must know another thread or process has reached a
 * state: the condition is checked again every millisecond, and a test fails (naming what it
 * waited for) after 30 s rather than hang.
 */
public final class Await {
    private static final Duration DEFAULT = Duration.ofSeconds(30);

    private Await() {}

    public static void until(String what, BooleanSupplier condition) {
        until(what, DEFAULT, condition);
    }

    public static void until(String what, Duration timeout, BooleanSupplier condition) {
        if (!within(timeout, condition)) {
            fail("waited " + timeout.toSeconds() + " s for " + what);
        }
    }

    /** True as soon as the condition holds; false if it still does not after {@code timeout}. */
    public static boolean within(Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
            if (Thread.interrupted()) {
                Thread.currentThread().interrupt();
                fail("interrupted while waiting");
            }
        }
        return true;
    }
}
