package io.diskstack.nbd.client;

import static io.diskstack.nbd.Nbd.*;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import io.diskstack.nbd.Nbd;
import io.diskstack.nbd.ProtocolException;
import io.diskstack.nbd.Transport;
import io.diskstack.nbd.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * One negotiated connection in the transmission phase. Callers send requests from any thread
 * and wait for their replies, which are matched to requests by cookie ({@link ReplyDispatch}),
 * so many requests are in flight at once. If the connection breaks or the server breaks the
 * protocol, every waiting request fails with {@link ConnectionLost} and the owner is told once.
 */
final class ClientConnection implements AutoCloseable {
    /** The connection ended under a request; the request may be retried on a new one. */
    static final class ConnectionLost extends IOException {
        ConnectionLost(String message) {
            super(message);
        }
    }

    private final Transport transport;
    private final ClientNegotiation.Agreed agreed;
    private final String server;
    private final ReplyDispatch replies;
    private final AtomicLong cookies = new AtomicLong();
    private final Object writeLock = new Object();
    private final Consumer<ClientConnection> onLost;
    private final AtomicReference<String> lostReason = new AtomicReference<>();

    ClientConnection(ClientNegotiation.Agreed agreed, String server, Consumer<ClientConnection> onLost) {
        this.transport = agreed.transport();
        this.agreed = agreed;
        this.server = server;
        this.onLost = onLost;
        this.replies = new ReplyDispatch(new ReplyReader(agreed, server), this::readFailed, server);
        replies.startWatcher("nbd-client " + server);
    }

    ClientNegotiation.Agreed agreed() {
        return agreed;
    }

    boolean isAlive() {
        return lostReason.get() == null;
    }

    String lostReason() {
        return lostReason.get();
    }

    /** Reads {@code dst.remaining()} bytes at {@code offset} into {@code dst}. */
    void read(long offset, ByteBuffer dst) throws IOException {
        Pending p = call(CMD_READ, 0, offset, dst.remaining(), null, dst);
        dst.position(p.base + (int) p.length);
    }

    void write(long offset, ByteBuffer src, boolean fua) throws IOException {
        call(CMD_WRITE, fua ? CMD_FLAG_FUA : 0, offset, src.remaining(), src, null);
    }

    void command(int type, int flags, long offset, long length) throws IOException {
        call(type, flags, offset, length, null, null);
    }

    /** The first extent of base:allocation at offset: {length, flags}. */
    long[] blockStatus(long offset, long length) throws IOException {
        Pending p = call(CMD_BLOCK_STATUS, CMD_FLAG_REQ_ONE, offset, length, null, null);
        if (!p.gotExtent) {
            throw new BlockIOException(Errno.EIO, server + " sent no extent for a block status request");
        }
        return new long[] {Math.min(p.extentLength, length), p.extentFlags};
    }

    private Pending call(int type, int flags, long offset, long length, ByteBuffer payload, ByteBuffer dst)
            throws IOException {
        long cookie = cookies.incrementAndGet();
        Pending p = new Pending(type, offset, length, dst);
        ByteBuffer head = ByteBuffer.allocate(28).putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putLong(offset).putInt((int) length).flip();
        // this thread may read replies for others too, and a channel closes under a thread
        // interrupted in I/O: an interrupt is kept for later, as a wait for the reply always did
        boolean interrupted = Thread.interrupted();
        try {
            replies.register(cookie, p);
            send(cookie, head, payload);
            replies.await(p);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        if (p.failure != null) {
            throw p.failure;
        }
        if (p.error != 0) {
            throw new BlockIOException(Nbd.errnoOf(p.error), server + ": " + commandName(type) + " at " + offset
                    + " failed: " + errnoName(p.error) + (p.message == null || p.message.isEmpty() ? ""
                            : " (" + Wire.printable(p.message) + ")"));
        }
        return p;
    }

    private void send(long cookie, ByteBuffer head, ByteBuffer payload) throws ConnectionLost {
        try {
            synchronized (writeLock) {
                if (payload != null) {
                    transport.write(head, payload);
                } else {
                    transport.write(head);
                }
            }
        } catch (IOException e) {
            replies.forget(cookie);
            lost("sending to " + server + " failed: " + e.getMessage());
            throw new ConnectionLost(lostReason());
        }
    }

    private void readFailed(Throwable e) {
        lost(isAlive() ? (e instanceof ProtocolException ? e.getMessage()
                : "connection to " + server + " lost: " + (e.getMessage() == null ? e.toString() : e.getMessage()))
                : lostReason());
    }

    /** Marks the connection lost (once), fails every waiting request and tells the owner. */
    private void lost(String reason) {
        boolean first = lostReason.compareAndSet(null, reason);
        if (first) {
            transport.abort();
        }
        replies.failAll(lostReason());
        if (first) {
            onLost.accept(this);
        }
    }

    /** Sends NBD_CMD_DISC and closes. */
    @Override
    public void close() {
        if (isAlive()) {
            try {
                synchronized (writeLock) {
                    transport.write(ByteBuffer.allocate(28).putInt(REQUEST_MAGIC).putShort((short) 0)
                            .putShort((short) CMD_DISC).putLong(0).putLong(0).putInt(0).flip());
                }
            } catch (IOException ignored) {
                // the server is gone already
            }
        }
        lostReason.compareAndSet(null, "closed");
        transport.abort();
        replies.failAll(lostReason());
    }

    static String commandName(int type) {
        return switch (type) {
            case CMD_READ -> "read";
            case CMD_WRITE -> "write";
            case CMD_FLUSH -> "flush";
            case CMD_TRIM -> "trim";
            case CMD_WRITE_ZEROES -> "write-zeroes";
            case CMD_BLOCK_STATUS -> "block-status";
            default -> "command " + type;
        };
    }

    private static String errnoName(int error) {
        return switch (error) {
            case EPERM -> "EPERM";
            case EIO -> "EIO";
            case ENOMEM -> "ENOMEM";
            case EINVAL -> "EINVAL";
            case ENOSPC -> "ENOSPC";
            case EOVERFLOW -> "EOVERFLOW";
            case ENOTSUP -> "ENOTSUP";
            case ESHUTDOWN -> "ESHUTDOWN";
            default -> "error " + error;
        };
    }
}
