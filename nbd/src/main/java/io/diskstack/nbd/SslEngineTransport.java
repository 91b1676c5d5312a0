package io.diskstack.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * TLS through an {@link SSLEngine} straight over a blocking socket channel, inet or Unix (an
 * SSLSocket needs {@code channel.socket()}, which Unix channels do not have). Same contract as
 * the other transports: one reader at a time, writers serialise whole messages under one lock.
 * A reader that must answer the peer after the handshake (a TLS 1.3 KeyUpdate) wraps under that
 * lock too, so its record never lands inside a writer's message.
 */
final class SslEngineTransport extends ChannelTlsTransport {
    private static final ByteBuffer[] NOTHING = {ByteBuffer.allocate(0)};
    /** Records wrapped before one write to the channel: fewer system calls for large messages. */
    private static final int RECORDS_PER_WRITE = 4;

    private final SSLEngine engine;
    private final ReentrantLock writeLock = new ReentrantLock();
    private final AtomicBoolean closed = new AtomicBoolean();
    /** The reader unwrapped a post-handshake message whose answer is not sent yet ({@link #sendPendingAnswer}). */
    private final AtomicBoolean answerPending = new AtomicBoolean();
    /** Ciphertext read from the channel and not yet unwrapped; kept ready for filling. Reader only. */
    private ByteBuffer netIn;
    /** Plaintext unwrapped and not yet handed out; kept ready for filling. Reader only. */
    private ByteBuffer appIn;
    /** Ciphertext to send; under writeLock. */
    private ByteBuffer netOut;

    private SslEngineTransport(SocketChannel channel, SSLEngine engine) {
        super(channel);
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocate(packet);
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize());
        this.netOut = ByteBuffer.allocate(packet * RECORDS_PER_WRITE);
    }

    /**
     * Runs the handshake on the calling thread. It has no timer of its own: the callers already
     * bound negotiation (the server's 10 s timer, the client's watchdog) by closing the channel,
     * which ends a read blocked here.
     */
    static SslEngineTransport handshake(SocketChannel channel, SSLEngine engine) throws IOException {
        SslEngineTransport t = new SslEngineTransport(channel, engine);
        try {
            t.runHandshake();
        } catch (SSLException e) {
            t.sendAlert();
            throw e;
        }
        return t;
    }

    private void runHandshake() throws IOException {
        engine.beginHandshake();
        HandshakeStatus hs = engine.getHandshakeStatus();
        while (hs != HandshakeStatus.FINISHED && hs != HandshakeStatus.NOT_HANDSHAKING) {
            switch (hs) {
                case NEED_TASK -> hs = runTasks();
                case NEED_WRAP -> hs = wrapAndSend(NOTHING);
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    SSLEngineResult r = unwrap(appIn);
                    if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                        throw new EOFException("the peer closed the connection during the TLS handshake");
                    }
                    hs = r.getHandshakeStatus();
                }
                default -> throw new IllegalStateException(hs.toString());
            }
        }
    }

    /** A failed handshake leaves the engine wanting to send its alert: the peer then says why. */
    private void sendAlert() {
        try {
            engine.closeOutbound();
            wrapAndSend(NOTHING);
        } catch (IOException | RuntimeException ignored) {
            // the handshake's own exception says what went wrong
        }
    }

    private HandshakeStatus runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
        return engine.getHandshakeStatus();
    }

    /**
     * Unwraps one record into {@code target} (or into appIn if it does not fit), reading the
     * channel as needed. Reader only.
     */
    private SSLEngineResult unwrap(ByteBuffer target) throws IOException {
        while (true) {
            netIn.flip();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, target);
            } finally {
                netIn.compact();
            }
            switch (r.getStatus()) {
                case OK, CLOSED -> {
                    return r;
                }
                case BUFFER_OVERFLOW -> {
                    if (target != appIn) {
                        target = appIn;
                    } else {
                        appIn = grown(appIn, engine.getSession().getApplicationBufferSize());
                    }
                }
                case BUFFER_UNDERFLOW -> {
                    if (!netIn.hasRemaining()) {
                        netIn = grown(netIn, engine.getSession().getPacketBufferSize());
                    }
                    readChannel();
                }
                default -> throw new IllegalStateException(r.getStatus().toString());
            }
        }
    }

    /** A buffer in filling mode with its content kept and room for {@code more} bytes. */
    private static ByteBuffer grown(ByteBuffer b, int more) {
        ByteBuffer bigger = ByteBuffer.allocate(b.position() + more);
        b.flip();
        return bigger.put(b);
    }

    private void readChannel() throws IOException {
        readSome(netIn);
    }

    /**
     * Wraps everything in {@code srcs} (with none, what the handshake or a close wants sent) and
     * sends it. Under writeLock, or before the transport is shared.
     */
    private HandshakeStatus wrapAndSend(ByteBuffer[] srcs) throws IOException {
        HandshakeStatus hs;
        boolean again;
        do {
            netOut.clear();
            again = false;
            while (true) {
                SSLEngineResult r = engine.wrap(srcs, netOut);
                hs = r.getHandshakeStatus();
                if (hs == HandshakeStatus.NEED_TASK) {
                    hs = runTasks();
                }
                if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                    if (netOut.position() == 0) {
                        netOut = ByteBuffer.allocate(engine.getSession().getPacketBufferSize() * RECORDS_PER_WRITE);
                    }
                    again = true;
                    break;
                }
                if (r.getStatus() == SSLEngineResult.Status.CLOSED && remaining(srcs)) {
                    send();
                    throw new IOException("the TLS connection is closed");
                }
                if (remaining(srcs) && r.bytesConsumed() == 0 && r.bytesProduced() == 0) {
                    // the engine wants to read first (a TLS 1.2 renegotiation): never spin here
                    throw new IOException("TLS: the peer asked to renegotiate, which is not supported");
                }
                if (!remaining(srcs) && !(hs == HandshakeStatus.NEED_WRAP && r.bytesProduced() > 0)) {
                    break;
                }
                if (netOut.remaining() < engine.getSession().getPacketBufferSize()) {
                    again = true;
                    break;
                }
            }
            send();
        } while (again);
        return hs;
    }

    /** Sends what netOut holds. */
    private void send() throws IOException {
        netOut.flip();
        while (netOut.hasRemaining()) {
            channel.write(netOut);
        }
    }

    private static boolean remaining(ByteBuffer[] srcs) {
        for (ByteBuffer b : srcs) {
            if (b.hasRemaining()) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (appIn.position() > 0) {
                appIn.flip();
                int n = Math.min(appIn.remaining(), dst.remaining());
                dst.put(appIn.slice(appIn.position(), n));
                appIn.position(appIn.position() + n);
                appIn.compact();
                continue;
            }
            // large reads skip the copy: records go straight into the caller's buffer
            ByteBuffer target = dst.remaining() >= engine.getSession().getApplicationBufferSize() ? dst : appIn;
            SSLEngineResult r = unwrap(target);
            if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                throw new EOFException("the peer closed the connection");
            }
            afterUnwrap(r.getHandshakeStatus());
        }
    }

    /**
     * Post-handshake messages: a KeyUpdate wants an answer, which goes out between writers'
     * messages. The reader never waits for the writers' lock: a writer may be stuck on a peer
     * that stops reading until we read its replies. If a writer holds the lock, the answer goes
     * with that writer's message or right after it.
     */
    private void afterUnwrap(HandshakeStatus hs) throws IOException {
        if (hs == HandshakeStatus.NEED_TASK) {
            hs = runTasks();
        }
        if (hs == HandshakeStatus.NEED_WRAP) {
            answerPending.set(true);
            sendPendingAnswer();
        }
    }

    /** Sends a pending post-handshake answer unless a writer holds the lock (it then sends it when it lets go). */
    private void sendPendingAnswer() throws IOException {
        while (answerPending.get() && writeLock.tryLock()) {
            try {
                if (answerPending.getAndSet(false)) {
                    HandshakeStatus hs = engine.getHandshakeStatus();
                    while (hs == HandshakeStatus.NEED_WRAP || hs == HandshakeStatus.NEED_TASK) {
                        hs = hs == HandshakeStatus.NEED_TASK ? runTasks() : wrapAndSend(NOTHING);
                    }
                }
            } finally {
                writeLock.unlock();
            }
        }
    }

    @Override
    public void write(ByteBuffer... srcs) throws IOException {
        writeLock.lock();
        try {
            wrapAndSend(srcs);
        } finally {
            writeLock.unlock();
        }
        sendPendingAnswer();
    }

    @Override
    public String tlsProtocol() {
        return engine.getSession().getProtocol() + " " + engine.getSession().getCipherSuite();
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        try {
            // a writer stuck on a peer that does not read would hold the lock for ever: then no close_notify
            if (writeLock.tryLock(1, TimeUnit.SECONDS)) {
                try {
                    engine.closeOutbound();
                    wrapAndSend(NOTHING);
                } finally {
                    writeLock.unlock();
                }
            }
        } catch (IOException | RuntimeException ignored) {
            // closing: the peer may be gone already
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closeChannel();
    }

    @Override
    public void abort() {
        closed.set(true);
        closeChannel();
    }

}
