package io.diskstack.nbd.client;

import io.diskstack.nbd.ProtocolException;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Matches one connection's replies to the requests in flight, leader/follower style: a requester
 * that finds nobody reading the socket becomes the reader and reads replies until its own is
 * done, completing (and waking) the owners of any others it meets on the way; then it passes the
 * role to a requester that waits. At queue depth 1 a request is so sent and answered on one
 * thread, with no hand-off to a reader thread and back.
 *
 * <p>The reader reads whole replies (or whole structured chunks) only, so the role changes hands
 * at message boundaries. A reply can be lost only with the connection: a failed read ends it
 * ({@code onReadFailure}), which fails every request still in flight ({@link #failAll}).
 *
 * <p>A watcher thread takes the reader's role when the connection has been idle for a while, so
 * that a server that goes away between requests is noticed (and reconnected to) before the next
 * request, as a dedicated reader thread would notice it.
 */
final class ReplyDispatch {
    /** Reads one simple reply or one structured reply chunk and applies it to its request. */
    interface ReplySource {
        void readOne(ReplyDispatch dispatch) throws IOException;
    }

    static final long WATCH_AFTER_IDLE_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final ReplySource source;
    private final Consumer<Throwable> onReadFailure;
    private final String server;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition watcherWake = lock.newCondition();
    /** In sending order, so that the role goes to the request likely to be answered next. */
    private final Map<Long, Pending> pending = new LinkedHashMap<>();
    private boolean reading;
    private long registered;
    private String endReason;

    /**
     * @param onReadFailure told when reading a reply fails, on the reading thread; it must end the
     *     connection, and so call {@link #failAll}
     */
    ReplyDispatch(ReplySource source, Consumer<Throwable> onReadFailure, String server) {
        this.source = source;
        this.onReadFailure = onReadFailure;
        this.server = server;
    }

    /** Starts the idle watcher, a daemon thread that ends with the connection. */
    void startWatcher(String name) {
        Thread watcher = new Thread(this::watch, name);
        watcher.setDaemon(true);
        watcher.start();
    }

    /** Adds a request before it is sent; throws if the connection has ended. */
    void register(long cookie, Pending p) throws ClientConnection.ConnectionLost {
        lock.lock();
        try {
            if (endReason != null) {
                throw new ClientConnection.ConnectionLost(endReason);
            }
            p.wake = lock.newCondition();
            pending.put(cookie, p);
            registered++;
        } finally {
            lock.unlock();
        }
    }

    /** Drops a request whose sending failed. */
    void forget(long cookie) {
        lock.lock();
        try {
            pending.remove(cookie);
        } finally {
            lock.unlock();
        }
    }

    /** The request a reply names; a reply to anything else breaks the protocol. Reader only. */
    Pending inFlight(long cookie) throws ProtocolException {
        lock.lock();
        try {
            Pending p = pending.get(cookie);
            if (p == null) {
                throw new ProtocolException(server + " replied to a request that is not in flight (cookie " + cookie + ")");
            }
            return p;
        } finally {
            lock.unlock();
        }
    }

    /** The reply to {@code cookie} is complete (its outcome filled in): its requester may go on. Reader only. */
    void complete(long cookie) {
        lock.lock();
        try {
            Pending p = pending.remove(cookie);
            if (p != null) {
                p.done = true;
                p.wake.signal();
            }
        } finally {
            lock.unlock();
        }
    }

    /** Fails every request in flight and every later one; the first reason given stays. */
    void failAll(String reason) {
        lock.lock();
        try {
            if (endReason == null) {
                endReason = reason;
            }
            for (Pending p : pending.values()) {
                p.failure = new ClientConnection.ConnectionLost(endReason);
                p.done = true;
                p.wake.signal();
            }
            pending.clear();
            watcherWake.signal();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Returns once {@code p} is done (answered, or failed with the connection), having read
     * replies off the connection whenever nobody else did. Not interruptible.
     */
    void await(Pending p) {
        lock.lock();
        try {
            while (!p.done && reading) {
                p.awaiting = true;
                p.wake.awaitUninterruptibly();
            }
            p.awaiting = false;
            if (p.done) {
                return;
            }
            reading = true;
        } finally {
            lock.unlock();
        }
        read(p);
    }

    /** As the reader: reads replies until {@code until} is done, or one reply if it is null; then passes the role on. */
    private void read(Pending until) {
        try {
            do {
                source.readOne(this);
            } while (until != null && !until.done);
        } catch (Throwable e) {
            // a reply may be half read: the connection cannot go on
            onReadFailure.accept(e);
            if (e instanceof Error err) {
                throw err;
            }
        } finally {
            passOn();
        }
    }

    private void passOn() {
        lock.lock();
        try {
            reading = false;
            // only a requester that waits can take the role; one still sending finds it free in await
            for (Pending next : pending.values()) {
                if (next.awaiting) {
                    next.wake.signal();
                    break;
                }
            }
        } finally {
            lock.unlock();
        }
    }

    private void watch() {
        while (true) {
            lock.lock();
            try {
                long seen = registered;
                watcherWake.awaitNanos(WATCH_AFTER_IDLE_NANOS);
                if (endReason != null) {
                    return;
                }
                if (registered != seen || reading || !pending.isEmpty()) {
                    continue;
                }
                reading = true;
            } catch (InterruptedException e) {
                return;
            } finally {
                lock.unlock();
            }
            // blocks until the next request's reply, or until the server goes away
            read(null);
        }
    }
}
