package io.diskstack.nbd.client;

/**
 * QEMU's {@code reconnect-delay}, as arithmetic on a clock: for that long after a server is lost,
 * requests wait for it to come back; after that they fail at once (EIO) until it is back. Kept
 * apart from the waiting so that tests judge it on a clock of their own.
 */
final class ReconnectPolicy {
    private final long delayNanos;

    ReconnectPolicy(long delayNanos) {
        this.delayNanos = delayNanos;
    }

    /** How much longer a request may wait at {@code now} for a server lost at {@code lostAt}; 0 or less: fail. */
    long waitLeft(long lostAt, long now) {
        return delayNanos - (now - lostAt);
    }

    /** Pause before the next connection attempt: 100 ms, doubling up to 2 s (QEMU doubles up to 16 s). */
    static long backoffNanos(int attempt) {
        long ms = 100L << Math.min(attempt, 5);
        return Math.min(ms, 2000) * 1_000_000L;
    }

    long delayNanos() {
        return delayNanos;
    }
}
