package io.diskstack.nbd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** reconnect-delay judged on a clock the test moves. */
class ReconnectPolicyTest {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void requestsWaitForTheDelayThenFail() {
        ReconnectPolicy p = new ReconnectPolicy(5 * SECOND);
        long lostAt = 100 * SECOND;
        assertEquals(5 * SECOND, p.waitLeft(lostAt, lostAt));
        assertEquals(SECOND, p.waitLeft(lostAt, lostAt + 4 * SECOND));
        assertTrue(p.waitLeft(lostAt, lostAt + 5 * SECOND) <= 0);
        assertTrue(new ReconnectPolicy(0).waitLeft(lostAt, lostAt) <= 0, "no delay: fail at once");
    }

    @Test
    void backoffDoublesUpToTwoSeconds() {
        assertEquals(100_000_000L, ReconnectPolicy.backoffNanos(0));
        assertEquals(200_000_000L, ReconnectPolicy.backoffNanos(1));
        assertEquals(1_600_000_000L, ReconnectPolicy.backoffNanos(4));
        assertEquals(2 * SECOND, ReconnectPolicy.backoffNanos(5));
        assertEquals(2 * SECOND, ReconnectPolicy.backoffNanos(60));
    }

    @Test
    void aReconnectorPastItsDelayFailsRequestsWithoutWaiting() throws Exception {
        AtomicLong clock = new AtomicLong(0);
        Reconnector r = new Reconnector("nbd 'n0'", owner -> {
            throw new IOException("cannot connect to 127.0.0.1:1: Connection refused");
        }, new ReconnectPolicy(10 * SECOND), clock::get);
        IOException e = assertThrows(IOException.class, () -> r.open(0));
        assertEquals("cannot connect to 127.0.0.1:1: Connection refused", e.getMessage());
        // never connected: lost at 0, so at 10 s the delay is over and acquire fails at once
        clock.set(10 * SECOND);
        BlockIOException b = assertThrows(BlockIOException.class, r::acquire);
        assertEquals(Errno.EIO, b.errno());
        r.close();
    }
}
