package io.diskstack.nbd.server;

import static io.diskstack.nbd.Nbd.*;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.nbd.Nbd;
import io.diskstack.nbd.ProtocolException;
import io.diskstack.nbd.Transport;
import io.diskstack.nbd.Wire;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One client connection: negotiation, then the transmission phase. The connection's thread reads
 * requests; each runs on the server's pool and is answered when it is done, so many are in
 * flight and replies go out of order. Memory is bounded per connection: at most
 * {@link #MAX_IN_FLIGHT} requests and {@link #MAX_IN_FLIGHT_BYTES} of payload, and no request
 * larger than the advertised maximum payload; reading waits while the bounds are reached.
 *
 * <p>Replies are combined: a request that finds another thread writing leaves its reply in the
 * outbox and goes back to the pool; the writing thread sends everything queued in one gathered
 * write before it lets go. At queue depth one the reply goes out on its own thread at once.
 */
final class NbdConnection implements Runnable {
    private static final Logger LOG = Logger.getLogger(NbdConnection.class.getName());
    static final int MAX_IN_FLIGHT = 128;
    static final int MAX_IN_FLIGHT_BYTES = 64 << 20;
    /** Extents per block status reply: far below the spec's 2^20, so one reply stays small. */
    private static final int MAX_EXTENTS = 1 << 14;

    private final NbdServer server;
    private final Executor pool;
    private final String peer;
    private final Semaphore slots = new Semaphore(MAX_IN_FLIGHT);
    private final Semaphore bytes = new Semaphore(MAX_IN_FLIGHT_BYTES);
    /** Replies not written yet; see {@link #send}. */
    private final ConcurrentLinkedQueue<Reply> outbox = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean writing = new AtomicBoolean();
    private volatile Transport transport;
    private volatile NbdExport export;
    private volatile boolean closing;
    private boolean structured;
    private boolean baseAllocation;

    NbdConnection(NbdServer server, Executor pool, Transport transport, String peer) {
        this.server = server;
        this.pool = pool;
        this.transport = transport;
        this.peer = peer;
    }

    String peer() {
        return peer;
    }

    /** The export chosen, or null while negotiating. */
    NbdExport export() {
        return export;
    }

    @Override
    public void run() {
        try {
            Negotiation.Agreed agreed = new Negotiation(server, transport).run();
            server.negotiated(this);
            if (agreed == null) {
                return;
            }
            transport = agreed.transport();
            if (transport.isTls()) {
                LOG.fine(() -> peer + ": " + transport.tlsProtocol());
            }
            structured = agreed.structured();
            baseAllocation = agreed.baseAllocation();
            NbdExport e = agreed.export();
            server.enter(e);
            e.totalConnections.increment();
            export = e;
            try {
                if (!server.serves(e)) {
                    // block-export-del came between the handshake and now, and missed this connection
                    LOG.info(() -> peer + ": export '" + e.id() + "' was removed; disconnecting");
                    return;
                }
                serve(e.backend());
                // NBD_CMD_DISC: the requests in flight are answered before the connection closes
                slots.acquireUninterruptibly(MAX_IN_FLIGHT);
                slots.release(MAX_IN_FLIGHT);
            } finally {
                e.connections.decrementAndGet();
            }
        } catch (EOFException e) {
            LOG.fine(() -> peer + ": closed by the client");
        } catch (ProtocolException e) {
            LOG.warning(peer + ": " + e.getMessage() + "; disconnecting");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException | RuntimeException e) {
            if (!closing) {
                LOG.log(Level.INFO, peer + ": connection failed: " + e.getMessage(), LOG.isLoggable(Level.FINE) ? e : null);
            }
        } finally {
            server.negotiated(this);
            transport.abort();
            // a request still running holds the backend: let it finish before the slot is free
            slots.acquireUninterruptibly(MAX_IN_FLIGHT);
            server.closed(this);
        }
    }

    /** Drops the connection (server shutdown); requests in flight finish first in {@link #run}. */
    void close() {
        closing = true;
        transport.abort();
    }

    private void serve(BlockBackend backend) throws IOException, InterruptedException {
        ByteBuffer head = ByteBuffer.allocate(28);
        while (true) {
            head.clear();
            transport.readFully(head);
            head.flip();
            if (head.getInt() != REQUEST_MAGIC) {
                throw new ProtocolException("a request without the request magic");
            }
            int flags = Short.toUnsignedInt(head.getShort());
            int type = Short.toUnsignedInt(head.getShort());
            long cookie = head.getLong();
            long offset = head.getLong();
            int length = head.getInt();
            long unsignedLength = Integer.toUnsignedLong(length);
            if (type == CMD_DISC) {
                return;
            }
            int payload = 0;
            if (type == CMD_WRITE) {
                if (unsignedLength > Nbd.MAX_PAYLOAD) {
                    throw new ProtocolException("a write of " + unsignedLength + " bytes, above the maximum payload");
                }
                payload = length;
            } else if (type == CMD_READ && unsignedLength <= Nbd.MAX_PAYLOAD) {
                payload = length;
            }
            slots.acquire();
            bytes.acquire(payload);
            PooledBuffer buffer = null;
            try {
                if (type == CMD_WRITE) {
                    buffer = BufferPool.acquire(length);
                    transport.readFully(buffer.buffer());
                    buffer.buffer().flip();
                }
            } catch (IOException | RuntimeException e) {
                release(buffer, payload);
                throw e;
            }
            Request r = new Request(backend, type, flags, cookie, offset, unsignedLength, buffer, payload);
            try {
                pool.execute(r);
            } catch (RejectedExecutionException e) {
                release(buffer, payload);
                throw new IOException("the server is shutting down");
            }
        }
    }

    private void release(PooledBuffer buffer, int payload) {
        if (buffer != null) {
            buffer.close();
        }
        bytes.release(payload);
        slots.release();
    }

    /** One request, run on the pool. */
    private final class Request implements Runnable {
        final BlockBackend backend;
        final int type;
        final int flags;
        final long cookie;
        final long offset;
        final long length;
        final PooledBuffer buffer;
        final int payload;

        Request(BlockBackend backend, int type, int flags, long cookie, long offset, long length, PooledBuffer buffer,
                int payload) {
            this.backend = backend;
            this.type = type;
            this.flags = flags;
            this.cookie = cookie;
            this.offset = offset;
            this.length = length;
            this.buffer = buffer;
            this.payload = payload;
        }

        /** Set once a reply owns this request's buffers: they are released when it is written. */
        private boolean replied;

        @Override
        public void run() {
            try {
                perform();
            } finally {
                if (!replied) {
                    release(buffer, payload);
                }
            }
        }

        private void perform() {
            String problem = check();
            if (problem != null) {
                error(problem.startsWith("read-only") ? EPERM : problem.startsWith("past") && isWrite() ? ENOSPC
                        : problem.startsWith("too long") ? EOVERFLOW : EINVAL, problem);
                return;
            }
            try {
                switch (type) {
                    case CMD_READ -> read();
                    case CMD_WRITE -> {
                        backend.write(offset, buffer.buffer(), has(CMD_FLAG_FUA) ? RequestFlags.FUA : 0);
                        done();
                    }
                    case CMD_FLUSH -> {
                        backend.flush();
                        done();
                    }
                    case CMD_TRIM -> {
                        backend.discard(offset, length);
                        if (has(CMD_FLAG_FUA)) {
                            backend.flush();
                        }
                        done();
                    }
                    case CMD_WRITE_ZEROES -> {
                        int f = (has(CMD_FLAG_FUA) ? RequestFlags.FUA : 0)
                                | (has(CMD_FLAG_NO_HOLE) ? 0 : RequestFlags.MAY_UNMAP)
                                | (has(CMD_FLAG_FAST_ZERO) ? RequestFlags.NO_FALLBACK : 0);
                        backend.writeZeroes(offset, length, f);
                        done();
                    }
                    case CMD_CACHE -> done();
                    case CMD_BLOCK_STATUS -> blockStatus();
                    default -> throw new IllegalStateException("checked above");
                }
            } catch (BlockIOException e) {
                error(errorOf(e.errno()), e.getMessage());
            } catch (IOException | RuntimeException e) {
                LOG.log(Level.FINE, "request failed", e);
                error(EIO, e.getMessage() == null ? e.toString() : e.getMessage());
            }
        }

        private boolean has(int flag) {
            return (flags & flag) != 0;
        }

        private boolean isWrite() {
            return type == CMD_WRITE || type == CMD_WRITE_ZEROES || type == CMD_TRIM;
        }

        /** Why the request cannot run, or null. */
        private String check() {
            int allowed = switch (type) {
                case CMD_READ -> CMD_FLAG_FUA | CMD_FLAG_DF;
                case CMD_WRITE, CMD_TRIM, CMD_FLUSH, CMD_CACHE -> CMD_FLAG_FUA;
                case CMD_WRITE_ZEROES -> CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO;
                case CMD_BLOCK_STATUS -> CMD_FLAG_FUA | CMD_FLAG_REQ_ONE;
                default -> -1;
            };
            if (allowed == -1) {
                return "unknown command " + type;
            }
            if ((flags & ~allowed) != 0) {
                return "flags " + Integer.toHexString(flags) + " are not valid for command " + type;
            }
            if (type == CMD_FLUSH) {
                return null;
            }
            if (isWrite() && !backend.isWritable()) {
                return "read-only export";
            }
            if (type == CMD_READ && length > Nbd.MAX_PAYLOAD) {
                return "too long: a read of " + length + " bytes, above the maximum payload";
            }
            if (type == CMD_BLOCK_STATUS && !baseAllocation) {
                return "no metadata context was negotiated";
            }
            long size = backend.size();
            if (offset < 0 || offset > size || length > size - offset) {
                return "past the end: [" + Long.toUnsignedString(offset) + ", +" + length + ") of " + size + " bytes";
            }
            return null;
        }

        private void read() throws IOException {
            PooledBuffer b = BufferPool.acquire((int) length);
            ByteBuffer data = b.buffer();
            try {
                backend.read(offset, data);
            } catch (IOException | RuntimeException e) {
                b.close();
                throw e;
            }
            data.flip();
            if (structured) {
                ByteBuffer head = ByteBuffer.allocate(28).putInt(STRUCTURED_REPLY_MAGIC).putShort((short) REPLY_FLAG_DONE)
                        .putShort((short) REPLY_TYPE_OFFSET_DATA).putLong(cookie).putInt(8 + data.remaining())
                        .putLong(offset).flip();
                reply(b, head, data);
            } else {
                reply(b, simple(0), data);
            }
        }

        private void blockStatus() throws IOException {
            boolean one = has(CMD_FLAG_REQ_ONE);
            long end = offset + Math.max(length, 1);
            ByteBuffer extents = ByteBuffer.allocate(8 * (one ? 1 : 64));
            int lastFlags = -1;
            int count = 0;
            long pos = offset;
            while (pos < end && count < MAX_EXTENTS) {
                BlockStatus s = backend.blockStatus(pos, end - pos);
                long len = Math.min(s.length(), end - pos);
                int f = (s.isData() ? 0 : STATE_HOLE) | (s.isZero() ? STATE_ZERO : 0);
                if (f == lastFlags) {
                    int at = extents.position() - 8;
                    extents.putInt(at, extents.getInt(at) + (int) len);
                } else {
                    if (one && count == 1) {
                        break;
                    }
                    if (!extents.hasRemaining()) {
                        extents = ByteBuffer.allocate(extents.capacity() * 2).put(extents.flip());
                    }
                    extents.putInt((int) len).putInt(f);
                    lastFlags = f;
                    count++;
                }
                pos += len;
            }
            extents.flip();
            ByteBuffer head = ByteBuffer.allocate(24).putInt(STRUCTURED_REPLY_MAGIC).putShort((short) REPLY_FLAG_DONE)
                    .putShort((short) REPLY_TYPE_BLOCK_STATUS).putLong(cookie).putInt(4 + extents.remaining())
                    .putInt(Negotiation.BASE_ALLOCATION_ID).flip();
            reply(null, head, extents);
        }

        private void done() {
            reply(null, simple(0));
        }

        private ByteBuffer simple(int error) {
            return ByteBuffer.allocate(16).putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie).flip();
        }

        private void error(int error, String message) {
            server.countError(export);
            if (!structured) {
                reply(null, simple(error));
                return;
            }
            byte[] text = Wire.utf8(message.length() > 1000 ? message.substring(0, 1000) : message);
            ByteBuffer b = ByteBuffer.allocate(20 + 6 + text.length).putInt(STRUCTURED_REPLY_MAGIC)
                    .putShort((short) REPLY_FLAG_DONE).putShort((short) REPLY_TYPE_ERROR).putLong(cookie)
                    .putInt(6 + text.length).putInt(error).putShort((short) text.length).put(text).flip();
            reply(null, b);
        }

        /** Queues this request's reply; its buffers (and {@code data}'s, if any) go back once it is written. */
        private void reply(PooledBuffer data, ByteBuffer... parts) {
            replied = true;
            send(new Reply(parts, () -> {
                if (data != null) {
                    data.close();
                }
                release(buffer, payload);
            }));
        }
    }

    /** One request's reply: its parts go out together, then {@code written} runs. */
    private record Reply(ByteBuffer[] parts, Runnable written) {}

    /** At most this many replies in one gathered write (each has one or two parts; Linux's IOV_MAX is 1024). */
    private static final int MAX_BATCH = 256;

    /**
     * Sends {@code reply} with whatever else is queued: the thread that finds no one writing
     * writes the outbox until it is empty; the others only queue. A failed write aborts the
     * connection (the reader sees it); the replies after it fail to write on the closed
     * connection in turn. Each reply's buffers go back once its write is over, whatever came of it.
     */
    private void send(Reply reply) {
        outbox.add(reply);
        // re-check after letting go: a reply queued just before the release has no other writer
        while (!outbox.isEmpty() && writing.compareAndSet(false, true)) {
            List<Reply> batch = new ArrayList<>();
            List<ByteBuffer> parts = new ArrayList<>();
            try {
                Reply r;
                while (batch.size() < MAX_BATCH && (r = outbox.poll()) != null) {
                    batch.add(r);
                    for (ByteBuffer b : r.parts()) {
                        parts.add(b);
                    }
                }
                transport.write(parts.toArray(ByteBuffer[]::new));
            } catch (IOException | RuntimeException e) {
                if (!closing) {
                    LOG.fine(() -> peer + ": cannot reply: " + e.getMessage());
                }
                try {
                    transport.abort();
                } catch (RuntimeException ignored) {
                    // closing anyway
                }
            } finally {
                writing.set(false);
                for (Reply r : batch) {
                    try {
                        r.written().run();
                    } catch (RuntimeException e) {
                        LOG.log(Level.WARNING, peer + ": releasing a reply's buffers failed", e);
                    }
                }
            }
        }
    }
}
