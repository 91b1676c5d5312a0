package io.diskstack.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What a backend shows when some nodes below it hold other content: the nodes above those points
 * (luks, quorum, raw with an offset…) opened again, read-only, in a graph of their own from their
 * open options, with each point replaced by a {@link Source} (a snapshot's content, a frozen
 * image). A snapshot view is one: the disk as it was.
 *
 * <p>The rebuild reads only the shape: plain filters ({@link BlockNode#filteredChild()}) are
 * skipped, every other node above a point is reopened with each child option (the edge's name is
 * its option key) naming the child's stand-in, and children off the way to the points (luks's
 * detached {@code header}) are read through the live nodes. Objects (secrets) are the live
 * graph's. Thread-safe for reads; close it to close the reopened nodes and the sources.
 */
public final class ReadOnlyView implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ReadOnlyView.class.getName());

    /** Read-only content that stands in for a node of the live graph. Thread-safe. */
    public interface Source extends AutoCloseable {
        long size();

        /** Fills {@code dst} from its position to its limit with the bytes at {@code offset}. */
        void read(long offset, ByteBuffer dst) throws IOException;

        @Override
        void close();
    }

    private final BlockGraph graph;
    private final BlockBackend backend;

    private ReadOnlyView(BlockGraph graph, BlockBackend backend) {
        this.graph = graph;
        this.backend = backend;
    }

    /**
     * Opens what {@code top} shows with each node of {@code points} replaced by its source. The
     * view owns the sources from here on, also when this fails.
     *
     * @param name what the view is, for messages and the holds on live nodes: {@code snapshot view 'disk0/s1'}
     * @throws ConfigException if a point is not below {@code top}
     */
    public static ReadOnlyView open(BlockGraph live, BlockNode top, Map<BlockNode, Source> points, String name)
            throws IOException {
        Builder b = new Builder(live, points, name);
        try {
            for (BlockNode p : points.keySet()) {
                if (!BlockGraph.reaches(top, p)) {
                    throw new ConfigException(name + ": node '" + p.nodeName() + "' is not below '"
                            + top.nodeName() + "'");
                }
            }
            String root = b.standIn(top);
            return new ReadOnlyView(b.view, b.view.addBackend("view", root, false));
        } catch (IOException | RuntimeException | Error e) {
            b.abandon();
            throw e;
        }
    }

    /**
     * A live node read as it is, holding it in the live graph while the source is open: with
     * {@code unchanging}, nobody may write it meanwhile (a frozen base stays as the snapshot
     * left it), else others keep every permission (a luks header the live node still edits).
     */
    public static Source liveNode(BlockGraph live, BlockNode node, boolean unchanging, String holder) {
        EnumSet<Permission> shared = unchanging
                ? EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE_UNCHANGED, Permission.GRAPH_MOD)
                : EnumSet.allOf(Permission.class);
        BlockGraph.Hold hold = live.hold(node, Permissions.of(EnumSet.of(Permission.CONSISTENT_READ), shared), holder);
        return new Source() {
            @Override
            public long size() {
                return node.size();
            }

            @Override
            public void read(long offset, ByteBuffer dst) throws IOException {
                RequestPath.read(node, offset, dst, 0);
            }

            @Override
            public void close() {
                hold.close();
            }
        };
    }

    public long size() {
        return backend.size();
    }

    /** Fills {@code dst} with the bytes at {@code offset}, which must lie within {@link #size()}. */
    public void read(long offset, ByteBuffer dst) throws IOException {
        backend.read(offset, dst);
    }

    /** The view's node-names, for tests. */
    java.util.List<String> nodeNames() {
        return graph.nodes().stream().map(BlockNode::nodeName).toList();
    }

    /** Closes the reopened nodes, then the sources. */
    @Override
    public void close() {
        graph.close();
    }

    /** Opens the stand-ins, top down. */
    private static final class Builder {
        private final BlockGraph live;
        private final Map<BlockNode, Source> points;
        private final String name;
        private final SourceDriver sources = new SourceDriver();
        private final BlockGraph view;
        private final Map<BlockNode, String> standIns = new IdentityHashMap<>();
        private final List<Source> unopened;
        private int generated;

        Builder(BlockGraph live, Map<BlockNode, Source> points, String name) {
            this.live = live;
            this.points = points;
            this.name = name;
            this.unopened = new ArrayList<>(points.values());
            DriverRegistry drivers = new DriverRegistry();
            for (String n : live.drivers().names()) {
                drivers.register(live.drivers().get(n, name));
            }
            drivers.register(sources);
            this.view = new BlockGraph(drivers, live.objects(), live.baseDir());
        }

        /** The view's node-name of what stands in for {@code node}, opening it first. */
        String standIn(BlockNode node) throws IOException {
            String done = standIns.get(node);
            if (done != null) {
                return done;
            }
            String opened;
            Source source = points.get(node);
            if (source != null) {
                opened = openSource(node, source);
            } else if (node.filteredChild() != null) {
                opened = standIn(node.filteredChild().node());
            } else {
                Map<String, String> children = new LinkedHashMap<>();
                for (BlockChild c : node.children()) {
                    children.put(c.name(), leadsToPoint(c.node()) ? standIn(c.node())
                            : openSource(c.node(), liveNode(live, c.node(), false, name)));
                }
                opened = view.open(node.reopenOptions(freeName(node), children)).nodeName();
            }
            standIns.put(node, opened);
            return opened;
        }

        private boolean leadsToPoint(BlockNode node) {
            for (BlockNode p : points.keySet()) {
                if (BlockGraph.reaches(node, p)) {
                    return true;
                }
            }
            return false;
        }

        private String openSource(BlockNode node, Source source) throws IOException {
            unopened.remove(source);
            String id = sources.add(source);
            Map<String, Object> options = new LinkedHashMap<>();
            options.put("driver", SourceDriver.NAME);
            options.put("node-name", freeName(node));
            options.put("source", id);
            try {
                return view.open(options).nodeName();
            } catch (IOException | RuntimeException e) {
                source.close();
                throw e;
            }
        }

        /** The live node's name if the view has no node of that name yet, else a made-up one. */
        private String freeName(BlockNode node) {
            String n = node.nodeName();
            while (!BlockGraph.isValidName(n) || view.node(n) != null) {
                n = "view-" + ++generated;
            }
            return n;
        }

        /** Closes what was opened so far, and the sources not handed to a node yet. */
        void abandon() {
            view.close();
            for (Source s : unopened) {
                try {
                    s.close();
                } catch (RuntimeException e) {
                    LOG.log(Level.WARNING, name + ": closing a source failed: " + e.getMessage());
                }
            }
        }
    }

    /** The view's leaves: nodes that read a {@link Source}, named by option {@code source}. */
    private static final class SourceDriver implements BlockDriver {
        static final String NAME = "view-source";
        private final Map<String, Source> byId = new java.util.concurrent.ConcurrentHashMap<>();

        String add(Source source) {
            String id = Integer.toString(byId.size());
            byId.put(id, source);
            return id;
        }

        @Override
        public String name() {
            return NAME;
        }

        @Override
        public DriverKind kind() {
            return DriverKind.PROTOCOL;
        }

        @Override
        public BlockNode open(NodeOpenContext ctx) {
            Source source = byId.get(ctx.options().requireString("source"));
            return new SourceNode(ctx, source);
        }
    }

    private static final class SourceNode extends BlockNode {
        private final Source source;

        SourceNode(NodeOpenContext ctx, Source source) {
            super(ctx);
            this.source = source;
        }

        @Override
        public long size() {
            return source.size();
        }

        @Override
        protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
            source.read(offset, dst);
        }

        @Override
        protected void write(long offset, ByteBuffer src, int flags) throws IOException {
            throw new BlockIOException(Errno.EROFS, "node '" + nodeName() + "' is a read-only view");
        }

        @Override
        protected void close() {
            source.close();
        }
    }
}
