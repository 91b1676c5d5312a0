package io.diskstack.filters.quorum;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** One line per key per interval; the next line admitted says how many were dropped. */
class LogLimiterTest {
    long now = -5_000_000_000L;

    @Test
    void admitsOneLinePerKeyPerIntervalAndCountsTheRest() {
        LogLimiter limiter = new LogLimiter(2, TimeUnit.SECONDS.toNanos(1), () -> now);
        assertEquals("", limiter.admit(0));
        assertEquals("", limiter.admit(1), "keys are independent");
        for (int i = 0; i < 7; i++) {
            now += 100_000_000L;
            assertNull(limiter.admit(0));
        }
        now += 300_000_000L;
        assertEquals(" (7 similar messages suppressed)", limiter.admit(0));
        assertNull(limiter.admit(0));
        now += 1_000_000_000L;
        assertEquals(" (1 similar message suppressed)", limiter.admit(0));
        assertEquals("", limiter.admit(1));
    }
}
