package io.diskstack.nbd.client;

import static io.diskstack.nbd.Nbd.*;

import io.diskstack.core.BackingImage;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.RequestFlags;
import io.diskstack.nbd.ProtocolException;
import io.diskstack.nbd.Transport;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * A node whose disk is an export of an NBD server (QEMU's nbd driver). Size, alignment and
 * block status come from the server; requests from many threads are pipelined on one
 * connection. A lost server is reconnected in the background ({@link Reconnector}): requests in
 * flight and new ones wait up to {@code reconnect-delay} and are sent again on the new
 * connection, or fail with EIO; {@code stats} count it.
 */
public final class NbdClientNode extends BlockNode {
    /** A server that does not finish negotiating within this long is given up on. */
    static final long NEGOTIATION_SECONDS = 10;
    private static final ScheduledExecutorService WATCHDOG = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "nbd-client-watchdog");
        t.setDaemon(true);
        return t;
    });

    private final NbdClientOptions options;
    private final Reconnector reconnector;
    private final String server;
    private final LongAdder errors = new LongAdder();
    private final LongAdder retried = new LongAdder();
    private long size;
    private int flags;
    private int minBlock;
    private int maxPayload;
    /** The TLS version and suite of the latest connection, or null. */
    private volatile String tlsProtocol;
    private boolean blockStatusWorks;

    private NbdClientNode(NodeOpenContext ctx, NbdClientOptions options) {
        super(ctx);
        this.options = options;
        this.server = options.address().url(options.export());
        this.reconnector = new Reconnector("nbd '" + ctx.nodeName() + "' (" + server + ")", this::connect,
                new ReconnectPolicy(options.reconnectDelayNanos()), System::nanoTime);
    }

    static NbdClientNode open(NodeOpenContext ctx, NbdClientOptions options) throws IOException {
        NbdClientNode node = new NbdClientNode(ctx, options);
        try {
            node.reconnector.open(options.openTimeoutNanos());
        } catch (IOException e) {
            node.reconnector.close();
            throw new ConfigException(ctx.owner() + ": " + e.getMessage());
        }
        return node;
    }

    /** Connects and negotiates; the first connection fixes size and flags, later ones must match. */
    private ClientConnection connect(Reconnector owner) throws IOException {
        SocketChannel channel;
        try {
            channel = options.address().connect();
        } catch (java.net.UnknownHostException e) {
            throw new IOException("host '" + options.address().host() + "' does not resolve");
        } catch (IOException e) {
            throw new IOException("cannot connect to " + options.address() + ": " + e.getMessage());
        }
        Transport transport = Transport.of(channel);
        ScheduledFuture<?> watchdog = WATCHDOG.schedule(transport::abort, NEGOTIATION_SECONDS, TimeUnit.SECONDS);
        ClientNegotiation.Agreed agreed;
        try {
            agreed = ClientNegotiation.run(transport, options.address().toString(), options.export(), options.tls(),
                    options.tlsHostname());
        } catch (java.io.EOFException e) {
            transport.abort();
            throw new ProtocolException(options.address() + " closed the connection during negotiation");
        } catch (IOException | RuntimeException e) {
            transport.abort();
            if (watchdog.isDone()) {
                throw new ProtocolException(options.address() + " did not finish negotiating within "
                        + NEGOTIATION_SECONDS + " s");
            }
            throw e;
        } finally {
            watchdog.cancel(false);
        }
        tlsProtocol = agreed.transport().tlsProtocol();
        synchronized (this) {
            if (maxPayload == 0) {
                size = agreed.size();
                flags = agreed.flags();
                minBlock = agreed.minBlock();
                maxPayload = agreed.maxPayload();
                blockStatusWorks = agreed.allocationContext() >= 0;
            } else if (agreed.size() != size) {
                agreed.transport().abort();
                throw new IOException(options.address() + " now serves " + agreed.size() + " bytes, not " + size
                        + " as before: not reconnecting to another disk");
            }
        }
        return new ClientConnection(agreed, options.address().toString(), owner::lost);
    }

    /** One request on whatever connection is live; sent again if the connection is lost under it. */
    private interface Call<T> {
        T on(ClientConnection c) throws IOException;
    }

    private <T> T call(Call<T> call) throws IOException {
        while (true) {
            ClientConnection c;
            try {
                c = reconnector.acquire();
            } catch (IOException e) {
                errors.increment();
                throw e;
            }
            try {
                return call.on(c);
            } catch (ClientConnection.ConnectionLost e) {
                retried.increment();
                reconnector.lost(c);
            } catch (IOException | RuntimeException e) {
                errors.increment();
                throw e;
            }
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int requestAlignment() {
        return minBlock;
    }

    @Override
    public boolean supportsFua() {
        return (flags & FLAG_SEND_FUA) != 0;
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int requestFlags) throws IOException {
        while (dst.hasRemaining()) {
            int n = Math.min(dst.remaining(), maxPayload);
            ByteBuffer part = dst.slice(dst.position(), n);
            long at = offset;
            call(c -> {
                c.read(at, part.clear());
                return null;
            });
            dst.position(dst.position() + n);
            offset += n;
        }
    }

    @Override
    protected void write(long offset, ByteBuffer src, int requestFlags) throws IOException {
        checkWritable();
        boolean fua = RequestFlags.has(requestFlags, RequestFlags.FUA) && supportsFua();
        while (src.hasRemaining()) {
            int n = Math.min(src.remaining(), maxPayload);
            ByteBuffer part = src.slice(src.position(), n);
            long at = offset;
            call(c -> {
                c.write(at, part.clear(), fua);
                return null;
            });
            src.position(src.position() + n);
            offset += n;
        }
    }

    @Override
    protected void writeZeroes(long offset, long length, int requestFlags) throws IOException {
        checkWritable();
        if ((flags & FLAG_SEND_WRITE_ZEROES) == 0
                || (RequestFlags.has(requestFlags, RequestFlags.NO_FALLBACK) && (flags & FLAG_SEND_FAST_ZERO) == 0)) {
            super.writeZeroes(offset, length, requestFlags);
            return;
        }
        int f = (RequestFlags.has(requestFlags, RequestFlags.MAY_UNMAP) ? 0 : CMD_FLAG_NO_HOLE)
                | (RequestFlags.has(requestFlags, RequestFlags.NO_FALLBACK) ? CMD_FLAG_FAST_ZERO : 0)
                | (RequestFlags.has(requestFlags, RequestFlags.FUA) && supportsFua() ? CMD_FLAG_FUA : 0);
        commandInPieces(CMD_WRITE_ZEROES, f, offset, length);
    }

    @Override
    protected void discard(long offset, long length) throws IOException {
        if ((flags & FLAG_SEND_TRIM) != 0 && !isReadOnly()) {
            commandInPieces(CMD_TRIM, 0, offset, length);
        }
    }

    private void commandInPieces(int type, int f, long offset, long length) throws IOException {
        long max = 1L << 30; // requests carry 32-bit lengths: stay well below
        while (length > 0) {
            long n = Math.min(length, max - max % minBlock);
            long at = offset;
            call(c -> {
                c.command(type, f, at, n);
                return null;
            });
            offset += n;
            length -= n;
        }
    }

    @Override
    protected void flush() throws IOException {
        if ((flags & FLAG_SEND_FLUSH) != 0) {
            call(c -> {
                c.command(CMD_FLUSH, 0, 0, 0);
                return null;
            });
        }
    }

    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        int allocated = BlockStatus.ALLOCATED | BlockStatus.OFFSET_VALID;
        if (!blockStatusWorks) {
            return new BlockStatus(length, allocated | BlockStatus.DATA, null, offset);
        }
        long asked = Math.min(length, 1L << 31);
        long[] extent = call(c -> c.blockStatus(offset, asked));
        int f = (int) extent[1];
        return new BlockStatus(extent[0], allocated | ((f & STATE_HOLE) != 0 ? 0 : BlockStatus.DATA)
                | ((f & STATE_ZERO) != 0 ? BlockStatus.ZERO : 0), null, offset);
    }

    private void checkWritable() throws BlockIOException {
        if ((flags & FLAG_READ_ONLY) != 0) {
            throw new BlockIOException(Errno.EROFS, "nbd '" + nodeName() + "': " + server + " is read-only");
        }
    }

    @Override
    public BackingImage backingImage() {
        // no host file: an overlay records the URL, and its folder must be given (overlay-dir=)
        return new BackingImage(server, "raw", null);
    }

    @Override
    public Map<String, Long> stats() {
        Map<String, Long> s = new LinkedHashMap<>();
        s.put("connected", reconnector.isConnected() ? 1L : 0L);
        s.put("connection-losses", reconnector.losses());
        s.put("reconnects", reconnector.reconnects());
        s.put("retried-requests", retried.sum());
        s.put("errors", errors.sum());
        return s;
    }

    @Override
    public String details() {
        String tls = options.tls() == null ? "" : " tls " + options.tls().kind() + (tlsProtocol == null ? "" : " " + tlsProtocol);
        return server + tls + (reconnector.isConnected() ? "" : " (disconnected)");
    }

    @Override
    protected void close() {
        reconnector.close();
    }
}
