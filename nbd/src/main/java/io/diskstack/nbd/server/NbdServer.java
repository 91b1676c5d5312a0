package io.diskstack.nbd.server;

import io.diskstack.core.ConfigException;
import io.diskstack.core.config.Stack;
import io.diskstack.nbd.NbdAddress;
import io.diskstack.nbd.TlsCreds;
import io.diskstack.nbd.Transport;
import java.io.IOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Logger;

/**
 * An NBD server (qemu-storage-daemon's {@code --nbd-server}) over the exports it is given: it
 * listens on one address, negotiates with each client ({@link Negotiation}) and serves it on a
 * connection thread ({@link NbdConnection}) whose requests run on a shared pool. A client that
 * does not finish negotiating within {@link #HANDSHAKE_SECONDS} is dropped, as QEMU does;
 * connections beyond {@code max-connections} are closed at once.
 */
public final class NbdServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(NbdServer.class.getName());
    static final int HANDSHAKE_SECONDS = 10;
    /** Requests that run at once while they compute: one per CPU, at least two (see {@link ElasticPool}). */
    private static final int RUNNERS = Math.max(2, Runtime.getRuntime().availableProcessors());
    /** Requests that may run at once while they wait (on a slow device, a throttle). */
    private static final int MAX_THREADS = Math.max(64, RUNNERS + 1);
    /** A request that took longer was waiting rather than computing. */
    private static final long SLOW_REQUEST_NANOS = 2_000_000;
    /** The server of each mounted stack, for its control file. */
    private static final Map<Stack, NbdServer> RUNNING = Collections.synchronizedMap(new WeakHashMap<>());

    private final NbdServerConfig config;
    private final TlsCreds tls;
    private final ServerSocketChannel listener;
    private final SocketAddress boundAddress;
    private final Map<String, NbdExport> exports = Collections.synchronizedMap(new LinkedHashMap<>());
    private final Set<NbdConnection> connections = ConcurrentHashMap.newKeySet();
    /** Export ids a command holds closed (a snapshot revert): new clients of them wait. */
    private final Set<String> held = new java.util.HashSet<>();
    private final Map<NbdConnection, Thread> threads = new ConcurrentHashMap<>();
    private final Map<NbdConnection, ScheduledFuture<?>> handshakeTimers = new ConcurrentHashMap<>();
    private final ElasticPool pool;
    private final ScheduledExecutorService timer;
    private final LongAdder refused = new LongAdder();
    private final LongAdder accepted = new LongAdder();
    private final AtomicInteger sequence = new AtomicInteger();
    private final Map<String, LongAdder> protocolErrors = new ConcurrentHashMap<>();
    private final Thread acceptor;
    private volatile boolean closed;

    private NbdServer(NbdServerConfig config, TlsCreds tls, ServerSocketChannel listener) throws IOException {
        this.config = config;
        this.tls = tls;
        this.listener = listener;
        this.boundAddress = listener.getLocalAddress();
        this.pool = new ElasticPool(RUNNERS, MAX_THREADS, SLOW_REQUEST_NANOS, daemonThreads("nbd-request"), System::nanoTime);
        this.timer = Executors.newSingleThreadScheduledExecutor(daemonThreads("nbd-timer"));
        this.acceptor = new Thread(this::acceptLoop, "nbd-accept");
        acceptor.setDaemon(true);
    }

    /**
     * Listens and serves; a port in use or a bad address is a one-line {@link ConfigException}.
     *
     * @param tls the server's credentials, or null for none
     */
    public static NbdServer start(NbdServerConfig config, TlsCreds tls, List<NbdExport> exports) throws IOException {
        return start(config, tls, exports, bind(config));
    }

    /** Starts serving on a listener {@link #bind} made. */
    public static NbdServer start(NbdServerConfig config, TlsCreds tls, List<NbdExport> exports,
                                  ServerSocketChannel listener) throws IOException {
        NbdServer server = new NbdServer(config, tls, listener);
        for (NbdExport e : exports) {
            server.addExport(e);
        }
        server.acceptor.start();
        return server;
    }

    /**
     * Listens on the configured address (no client is accepted until {@link #start}), so that a
     * port in use is found before anything else is opened.
     */
    public static ServerSocketChannel bind(NbdServerConfig config) {
        NbdAddress address = config.address();
        ServerSocketChannel listener;
        try {
            SocketAddress target = address.socketAddress();
            if (address.unix()) {
                removeStaleSocket(address);
                listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            } else {
                listener = ServerSocketChannel.open(((InetSocketAddress) target).getAddress() instanceof java.net.Inet6Address
                        ? StandardProtocolFamily.INET6 : StandardProtocolFamily.INET);
                listener.socket().setReuseAddress(true);
            }
            try {
                listener.bind(target, 64);
            } catch (IOException | RuntimeException e) {
                listener.close();
                throw e;
            }
        } catch (BindException e) {
            throw new ConfigException(NbdServerConfig.OWNER + ": cannot listen on " + address + ": "
                    + (e.getMessage() == null ? "address in use" : e.getMessage().toLowerCase(java.util.Locale.ROOT)));
        } catch (java.net.UnknownHostException e) {
            throw new ConfigException(NbdServerConfig.OWNER + ": 'addr.host' '" + address.host() + "' does not resolve");
        } catch (IOException e) {
            throw new ConfigException(NbdServerConfig.OWNER + ": cannot listen on " + address + ": " + e.getMessage());
        }
        return listener;
    }

    private static void removeStaleSocket(NbdAddress address) throws IOException {
        if (!Files.exists(address.path(), java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(address.path()))) {
            throw new BindException("address in use (a server answers there)");
        } catch (IOException e) {
            if (e instanceof BindException) {
                throw e;
            }
            if (!Files.readAttributes(address.path(), java.nio.file.attribute.BasicFileAttributes.class,
                    java.nio.file.LinkOption.NOFOLLOW_LINKS).isOther()) {
                throw new BindException("'" + address.path() + "' exists and is not a socket");
            }
            Files.delete(address.path());
        }
    }

    /** Registers the server of a mounted stack, for {@code MNT/.control/nbd-server}. */
    public void attach(Stack stack) {
        RUNNING.put(stack, this);
    }

    /** The server serving a mounted stack, or null. */
    public static NbdServer of(Stack stack) {
        return RUNNING.get(stack);
    }

    /** Where the server listens (the port the system chose, for port 0). */
    public NbdAddress address() {
        NbdAddress a = config.address();
        if (!a.unix() && boundAddress instanceof InetSocketAddress inet) {
            return new NbdAddress(false, a.host(), inet.getPort(), null);
        }
        return a;
    }

    /** The server's TLS credentials, or null. */
    public TlsCreds tlsCreds() {
        return tls;
    }

    /**
     * Serves one more export (the hook for {@code block-export-add}); its name must be free.
     */
    public void addExport(NbdExport export) {
        synchronized (exports) {
            if (exports.containsKey(export.name())) {
                throw new ConfigException("export '" + export.id() + "': NBD name '" + export.name()
                        + "' is already served by export '" + exports.get(export.name()).id() + "'");
            }
            exports.put(export.name(), export);
        }
    }

    /**
     * Stops serving an export (the hook for {@code block-export-del}): new clients no longer
     * find it, and its connections are closed once their requests in flight are done.
     */
    public void removeExport(String name) {
        NbdExport gone = exports.remove(name);
        if (gone != null) {
            for (NbdConnection c : connections) {
                if (c.export() == gone) {
                    c.close();
                }
            }
        }
    }

    /**
     * Runs the action while no client has any of these exports open; a client that chooses one
     * meanwhile waits until it is done.
     */
    public void whileClosed(java.util.Collection<String> ids, String reason, io.diskstack.core.ExportGuard.Action action)
            throws IOException {
        synchronized (held) {
            for (NbdExport e : exports()) {
                if (ids.contains(e.id()) && e.connections() > 0) {
                    throw new io.diskstack.core.BlockIOException(io.diskstack.core.Errno.EBUSY, "export '" + e.id()
                            + "' has " + e.connections() + " NBD client" + (e.connections() == 1 ? "" : "s")
                            + " connected: disconnect " + (e.connections() == 1 ? "it" : "them") + " first, " + reason);
                }
            }
            held.addAll(ids);
        }
        try {
            action.run();
        } finally {
            synchronized (held) {
                held.removeAll(ids);
                held.notifyAll();
            }
        }
    }

    /** Counts a client of the export, once no command holds it closed. */
    void enter(NbdExport e) throws InterruptedException {
        synchronized (held) {
            while (held.contains(e.id())) {
                held.wait();
            }
            e.connections.incrementAndGet();
        }
    }

    /** True while the export is served (not removed since a client chose it). */
    boolean serves(NbdExport e) {
        return exports.get(e.name()) == e;
    }

    NbdExport export(String name) {
        return exports.get(name);
    }

    List<NbdExport> exports() {
        synchronized (exports) {
            return new ArrayList<>(exports.values());
        }
    }

    void countError(NbdExport export) {
        if (export != null) {
            protocolErrors.computeIfAbsent(export.name(), k -> new LongAdder()).increment();
        }
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel channel;
            try {
                channel = listener.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!closed) {
                    LOG.warning("NBD server: accept failed: " + e.getMessage());
                }
                continue;
            }
            String peer = peerName(channel);
            if (config.maxConnections() > 0 && connections.size() >= config.maxConnections()) {
                refused.increment();
                LOG.info(() -> peer + ": refused, already " + config.maxConnections() + " connections (max-connections)");
                close(channel);
                continue;
            }
            try {
                if (!config.address().unix()) {
                    channel.socket().setTcpNoDelay(true);
                }
            } catch (IOException e) {
                close(channel);
                continue;
            }
            accepted.increment();
            NbdConnection c = new NbdConnection(this, pool, Transport.of(channel), peer);
            connections.add(c);
            handshakeTimers.put(c, timer.schedule(() -> {
                LOG.info(() -> peer + ": did not finish negotiating within " + HANDSHAKE_SECONDS + " s; disconnecting");
                c.close();
            }, HANDSHAKE_SECONDS, TimeUnit.SECONDS));
            Thread t = new Thread(c, "nbd-conn-" + sequence.incrementAndGet());
            t.setDaemon(true);
            threads.put(c, t);
            t.start();
            if (closed) {
                c.close();
            }
        }
    }

    private static String peerName(SocketChannel channel) {
        try {
            SocketAddress a = channel.getRemoteAddress();
            return "NBD client " + (a == null || a.toString().isEmpty() ? "(unix socket)" : a.toString());
        } catch (IOException e) {
            return "NBD client";
        }
    }

    private static void close(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // already gone
        }
    }

    /** Negotiation ended (either way): the handshake timer is cancelled. */
    void negotiated(NbdConnection c) {
        ScheduledFuture<?> f = handshakeTimers.remove(c);
        if (f != null) {
            f.cancel(false);
        }
    }

    void closed(NbdConnection c) {
        connections.remove(c);
        threads.remove(c);
    }

    /** Connections open now. */
    public int connectionCount() {
        return connections.size();
    }

    /**
     * Stops listening, drops every client once its requests in flight are done, and waits for
     * them; the backends are left to their owner.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing
        }
        for (NbdConnection c : connections) {
            c.close();
        }
        for (Thread t : new ArrayList<>(threads.values())) {
            try {
                t.join(TimeUnit.SECONDS.toMillis(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        pool.shutdown();
        timer.shutdownNow();
        if (config.address().unix()) {
            try {
                Files.deleteIfExists(config.address().path());
            } catch (IOException ignored) {
                // a stale socket file is removed by the next server
            }
        }
        RUNNING.values().remove(this);
    }

    /** {@code MNT/.control/nbd-server}: the address, the connections, and each export's counters. */
    public String render() {
        StringBuilder out = new StringBuilder();
        NbdAddress a = address();
        out.append("address ").append(a).append('\n');
        out.append("tls ").append(tls == null ? "off" : tls.kind() + " (" + tls.id() + ")").append('\n');
        out.append("max-connections ").append(config.maxConnections()).append('\n');
        out.append("connections ").append(connections.size()).append('\n');
        out.append("accepted-connections ").append(accepted.sum()).append('\n');
        out.append("refused-connections ").append(refused.sum()).append('\n');
        for (NbdExport e : exports()) {
            String n = e.name();
            out.append("export ").append(n).append(" id=").append(e.id()).append(" node=")
                    .append(e.backend().rootNode().nodeName()).append(e.backend().isWritable() ? " writable" : " read-only")
                    .append(" url=").append(a.url(n)).append('\n');
            out.append("  connections ").append(e.connections()).append('\n');
            out.append("  total-connections ").append(e.totalConnections.sum()).append('\n');
            LongAdder pe = protocolErrors.get(n);
            out.append("  protocol-errors ").append(pe == null ? 0 : pe.sum()).append('\n');
            for (String line : e.backend().stats().render().split("\n")) {
                out.append("  ").append(line).append('\n');
            }
        }
        return out.toString();
    }

    private static java.util.concurrent.ThreadFactory daemonThreads(String name) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, name + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
