package io.diskstack.nbd.client;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import java.io.IOException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Keeps a node connected: hands out the live connection, and when it is lost, reconnects in the
 * background (forever, backing off) while requests wait up to {@code reconnect-delay}
 * ({@link ReconnectPolicy}) and then fail with EIO until the server is back.
 */
final class Reconnector implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Reconnector.class.getName());

    /** Opens a new negotiated connection, or throws why it cannot. */
    interface Connector {
        ClientConnection connect(Reconnector owner) throws IOException;
    }

    private final String node;
    private final Connector connector;
    private final ReconnectPolicy policy;
    private final LongSupplier clock;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private ClientConnection current;
    private long lostAt;
    private String lostReason;
    private boolean closed;
    private Thread worker;
    private long reconnects;
    private long losses;

    Reconnector(String node, Connector connector, ReconnectPolicy policy, LongSupplier clock) {
        this.node = node;
        this.connector = connector;
        this.policy = policy;
        this.clock = clock;
    }

    /**
     * The first connection: tries until it works or {@code timeoutNanos} (QEMU's open-timeout; 0:
     * once) is over, backing off in between; throws the last failure.
     */
    void open(long timeoutNanos) throws IOException {
        long deadline = clock.getAsLong() + timeoutNanos;
        for (int attempt = 0; ; attempt++) {
            try {
                ClientConnection c = connector.connect(this);
                lock.lock();
                try {
                    current = c;
                } finally {
                    lock.unlock();
                }
                return;
            } catch (IOException e) {
                long left = deadline - clock.getAsLong();
                if (left <= 0) {
                    throw e;
                }
                lock.lock();
                try {
                    changed.awaitNanos(Math.min(left, ReconnectPolicy.backoffNanos(attempt)));
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    /** The live connection, waiting for one within the reconnect delay; EIO once the delay is over. */
    ClientConnection acquire() throws IOException {
        lock.lock();
        try {
            while (true) {
                if (closed) {
                    throw new BlockIOException(Errno.EIO, node + ": closed");
                }
                if (current != null && current.isAlive()) {
                    return current;
                }
                long left = policy.waitLeft(lostAt, clock.getAsLong());
                if (left <= 0) {
                    throw new BlockIOException(Errno.EIO, node + ": " + lostReason + "; reconnecting in the background");
                }
                changed.awaitNanos(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BlockIOException(Errno.EIO, node + ": interrupted while waiting for the server");
        } finally {
            lock.unlock();
        }
    }

    /** A connection reports it broke: start reconnecting, unless another one is current already. */
    void lost(ClientConnection connection) {
        lock.lock();
        try {
            if (closed || connection != current) {
                return;
            }
            current = null;
            lostAt = clock.getAsLong();
            lostReason = connection.lostReason();
            losses++;
            LOG.warning(node + ": " + lostReason + "; reconnecting"
                    + (policy.delayNanos() > 0 ? ", requests wait up to " + policy.delayNanos() / 1_000_000_000.0 + " s"
                            : ", requests fail until then"));
            if (worker == null || !worker.isAlive()) {
                worker = new Thread(this::reconnectLoop, "nbd-reconnect " + node);
                worker.setDaemon(true);
                worker.start();
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private void reconnectLoop() {
        for (int attempt = 0; ; attempt++) {
            lock.lock();
            try {
                if (closed || current != null) {
                    return;
                }
            } finally {
                lock.unlock();
            }
            ClientConnection c = null;
            try {
                c = connector.connect(this);
            } catch (IOException | RuntimeException e) {
                String why = e.getMessage();
                lock.lock();
                try {
                    if (attempt == 0 || !why.equals(lostReason)) {
                        LOG.fine(() -> node + ": reconnect failed: " + why);
                    }
                    if (!closed) {
                        changed.awaitNanos(ReconnectPolicy.backoffNanos(attempt));
                    }
                } catch (InterruptedException ie) {
                    return;
                } finally {
                    lock.unlock();
                }
                continue;
            }
            lock.lock();
            try {
                if (closed) {
                    c.close();
                    return;
                }
                current = c;
                reconnects++;
                LOG.warning(node + ": reconnected");
                changed.signalAll();
                return;
            } finally {
                lock.unlock();
            }
        }
    }

    boolean isConnected() {
        lock.lock();
        try {
            return current != null && current.isAlive();
        } finally {
            lock.unlock();
        }
    }

    long reconnects() {
        lock.lock();
        try {
            return reconnects;
        } finally {
            lock.unlock();
        }
    }

    long losses() {
        lock.lock();
        try {
            return losses;
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() {
        ClientConnection c;
        lock.lock();
        try {
            closed = true;
            c = current;
            current = null;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        if (c != null) {
            c.close();
        }
    }
}
