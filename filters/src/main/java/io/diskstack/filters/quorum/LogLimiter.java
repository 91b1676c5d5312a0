package io.diskstack.filters.quorum;

import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.LongSupplier;

/**
 * Rate limit for log lines: at most one line per key (a child and a kind of event) per
 * interval. A child that fails or loses every vote would otherwise log a line per request; the
 * counters in {@code stats} still count every one. The next line admitted says how many were
 * dropped.
 */
final class LogLimiter {
    private static final long NEVER = Long.MIN_VALUE;

    private final long intervalNanos;
    private final LongSupplier clock;
    private final AtomicLongArray lastLogged;
    private final AtomicLongArray suppressed;

    LogLimiter(int keys, long intervalNanos, LongSupplier clock) {
        this.intervalNanos = intervalNanos;
        this.clock = clock;
        this.lastLogged = new AtomicLongArray(keys);
        this.suppressed = new AtomicLongArray(keys);
        for (int i = 0; i < keys; i++) {
            lastLogged.set(i, NEVER);
        }
    }

    /**
     * Null if the line for {@code key} must be dropped now (and counts it); otherwise the suffix
     * to append: empty, or how many lines were dropped since the last one.
     */
    String admit(int key) {
        long now = clock.getAsLong();
        long last = lastLogged.get(key);
        if ((last != NEVER && now - last < intervalNanos) || !lastLogged.compareAndSet(key, last, now)) {
            suppressed.incrementAndGet(key);
            return null;
        }
        long dropped = suppressed.getAndSet(key, 0);
        if (dropped == 0) {
            return "";
        }
        return " (" + dropped + " similar message" + (dropped == 1 ? "" : "s") + " suppressed)";
    }
}
