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
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * One negotiated connection in the transmission phase. Callers send requests from any thread
 * and wait for their replies; one reader thread matches replies to requests by cookie, so many
 * requests are in flight at once. If the connection breaks or the server breaks the protocol,
 * every waiting request fails with {@link ConnectionLost} and the owner is told once.
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
    private final Map<Long, Pending> pending = new ConcurrentHashMap<>();
    private final AtomicLong cookies = new AtomicLong();
    private final Object writeLock = new Object();
    private final Thread reader;
    private final Consumer<ClientConnection> onLost;
    private final java.util.concurrent.atomic.AtomicReference<String> lostReason = new java.util.concurrent.atomic.AtomicReference<>();

    ClientConnection(ClientNegotiation.Agreed agreed, String server, Consumer<ClientConnection> onLost) {
        this.transport = agreed.transport();
        this.agreed = agreed;
        this.server = server;
        this.onLost = onLost;
        this.reader = new Thread(this::readLoop, "nbd-client " + server);
        reader.setDaemon(true);
        reader.start();
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

    /** One request waiting for its reply. */
    private static final class Pending {
        final int type;
        final long offset;
        final long length;
        /** Where a read's data goes: the caller's buffer, from its position. */
        final ByteBuffer dst;
        final int base;
        /** A block status reply's first extent: length and flags. */
        long extentLength;
        int extentFlags;
        boolean gotExtent;
        int error;
        String message;
        IOException failure;
        boolean done;

        Pending(int type, long offset, long length, ByteBuffer dst) {
            this.type = type;
            this.offset = offset;
            this.length = length;
            this.dst = dst;
            this.base = dst == null ? 0 : dst.position();
        }

        synchronized void finish() {
            done = true;
            notifyAll();
        }

        synchronized void await() {
            boolean interrupted = false;
            while (!done) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
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
        pending.put(cookie, p);
        ByteBuffer head = ByteBuffer.allocate(28).putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putLong(offset).putInt((int) length).flip();
        try {
            if (!isAlive()) {
                throw new ConnectionLost(lostReason());
            }
            synchronized (writeLock) {
                if (payload != null) {
                    transport.write(head, payload);
                } else {
                    transport.write(head);
                }
            }
        } catch (IOException e) {
            pending.remove(cookie);
            lost(e instanceof ConnectionLost ? e.getMessage() : "sending to " + server + " failed: " + e.getMessage());
            throw e instanceof ConnectionLost ? e : new ConnectionLost(lostReason());
        }
        p.await();
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

    private void readLoop() {
        try {
            while (true) {
                ByteBuffer magic = Wire.read(transport, 4);
                int m = magic.getInt();
                if (m == SIMPLE_REPLY_MAGIC) {
                    simpleReply();
                } else if (m == STRUCTURED_REPLY_MAGIC && agreed.structured()) {
                    structuredChunk();
                } else {
                    throw new ProtocolException(server + " sent a reply with an unknown magic 0x" + Integer.toHexString(m));
                }
            }
        } catch (IOException | RuntimeException e) {
            lost(isAlive() ? (e instanceof ProtocolException ? e.getMessage()
                    : "connection to " + server + " lost: " + (e.getMessage() == null ? e.toString() : e.getMessage()))
                    : lostReason());
        }
    }

    private Pending take(long cookie, boolean remove) throws ProtocolException {
        Pending p = remove ? pending.remove(cookie) : pending.get(cookie);
        if (p == null) {
            throw new ProtocolException(server + " replied to a request that is not in flight (cookie " + cookie + ")");
        }
        return p;
    }

    private void simpleReply() throws IOException {
        ByteBuffer b = Wire.read(transport, 12);
        int error = b.getInt();
        long cookie = b.getLong();
        Pending p = take(cookie, true);
        if (agreed.structured() && p.type == CMD_READ) {
            throw new ProtocolException(server + " sent a simple reply to a read after agreeing on structured replies");
        }
        if (error == 0 && p.type == CMD_READ) {
            transport.readFully(p.dst.duplicate().position(p.base).limit(p.base + (int) p.length));
        }
        p.error = error;
        p.finish();
    }

    private void structuredChunk() throws IOException {
        ByteBuffer b = Wire.read(transport, 16);
        int flags = Short.toUnsignedInt(b.getShort());
        int type = Short.toUnsignedInt(b.getShort());
        long cookie = b.getLong();
        long length = Integer.toUnsignedLong(b.getInt());
        Pending p = take(cookie, false);
        if (length > Nbd.MAX_PAYLOAD + 64L) {
            throw new ProtocolException(server + " sent a reply chunk of " + length + " bytes");
        }
        switch (type) {
            case REPLY_TYPE_NONE -> {
                if (length != 0) {
                    throw new ProtocolException(server + " sent a NONE chunk with a payload");
                }
            }
            case REPLY_TYPE_OFFSET_DATA -> {
                if (p.type != CMD_READ || length < 9) {
                    throw new ProtocolException(server + " sent an unexpected data chunk");
                }
                long at = Wire.read(transport, 8).getLong();
                long n = length - 8;
                checkWithin(p, at, n);
                transport.readFully(p.dst.duplicate().position(p.base + (int) (at - p.offset))
                        .limit(p.base + (int) (at - p.offset + n)));
            }
            case REPLY_TYPE_OFFSET_HOLE -> {
                if (p.type != CMD_READ || length != 12) {
                    throw new ProtocolException(server + " sent an unexpected hole chunk");
                }
                ByteBuffer h = Wire.read(transport, 12);
                long at = h.getLong();
                long n = Integer.toUnsignedLong(h.getInt());
                checkWithin(p, at, n);
                ByteBuffer zero = p.dst.duplicate().position(p.base + (int) (at - p.offset));
                for (long i = 0; i < n; i++) {
                    zero.put((byte) 0);
                }
            }
            case REPLY_TYPE_BLOCK_STATUS -> {
                if (p.type != CMD_BLOCK_STATUS || length < 12 || (length - 4) % 8 != 0) {
                    throw new ProtocolException(server + " sent an unexpected block status chunk");
                }
                ByteBuffer s = Wire.read(transport, (int) length);
                int context = s.getInt();
                long extent = Integer.toUnsignedLong(s.getInt());
                int f = s.getInt();
                if (extent == 0) {
                    throw new ProtocolException(server + " sent an extent of length 0");
                }
                if (context == agreed.allocationContext()) {
                    p.extentLength = extent;
                    p.extentFlags = f;
                    p.gotExtent = true;
                }
            }
            default -> {
                if ((type & (1 << 15)) == 0) {
                    throw new ProtocolException(server + " sent an unknown structured reply type " + type);
                }
                if (length < 6) {
                    throw new ProtocolException(server + " sent an error chunk of " + length + " bytes");
                }
                ByteBuffer e = Wire.read(transport, (int) length);
                int error = e.getInt();
                int messageLength = Short.toUnsignedInt(e.getShort());
                if (messageLength > e.remaining()) {
                    throw new ProtocolException(server + " sent an error message longer than its chunk");
                }
                String message = Wire.string(e, messageLength);
                p.error = error == 0 ? EINVAL : error;
                p.message = type == REPLY_TYPE_ERROR || type == REPLY_TYPE_ERROR_OFFSET ? message
                        : "unknown error chunk type " + type + (message.isEmpty() ? "" : ": " + message);
            }
        }
        if ((flags & REPLY_FLAG_DONE) != 0) {
            pending.remove(cookie);
            p.finish();
        }
    }

    private void checkWithin(Pending p, long at, long n) throws ProtocolException {
        if (at < p.offset || n > p.length || at - p.offset > p.length - n) {
            throw new ProtocolException(server + " sent data outside the range it was asked for");
        }
    }

    /** Marks the connection lost (once), fails every waiting request and tells the owner. */
    private void lost(String reason) {
        if (!lostReason.compareAndSet(null, reason)) {
            return;
        }
        transport.abort();
        for (Long cookie : pending.keySet()) {
            Pending p = pending.remove(cookie);
            if (p != null) {
                p.failure = new ConnectionLost(reason);
                p.finish();
            }
        }
        onLost.accept(this);
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
        for (Long cookie : pending.keySet()) {
            Pending p = pending.remove(cookie);
            if (p != null) {
                p.failure = new ConnectionLost("closed");
                p.finish();
            }
        }
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
