package io.diskstack.core.snapshot;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.ReadOnlyView;
import io.diskstack.core.config.ExternalSnapshotRecord;
import io.diskstack.core.config.Stack;
import io.diskstack.core.snapshot.InternalSnapshots.Snapshot;
import io.diskstack.core.snapshot.InternalSnapshots.SnapshotReader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One export's snapshots as the disk was at each ({@code MNT/.snapshots/DISK/NAME}): the nodes
 * above the snapshot points (luks, quorum, raw…; plain filters skipped) read, read-only, the
 * snapshot's content instead of the images' ({@link ReadOnlyView}), so a view has the disk's
 * size and bytes.
 * <ul>
 * <li>An internal snapshot shows when every image the walk lands on ({@link SnapshotTargets})
 *     has it, in the image itself or in an image of its backing chain (taken before an external
 *     snapshot froze it; the nearest wins).
 * <li>An external snapshot shows while its record's overlays are still on the images' backing
 *     chains: the view reads the bases they froze.
 * <li>One name, one file: an external snapshot keeps its name, an internal snapshot whose name
 *     is taken (or cannot be a file name) shows under its id. The commands refuse a name the
 *     other kind has, so only images snapshotted outside the mount can clash.
 * </ul>
 * Listing is cheap: the sizes are the disk's (a view over same-size points has the disk's size;
 * only a snapshot of another size is opened to learn its size). Open views are shared and kept
 * for a moment in a {@link ViewCache}.
 */
public final class SnapshotViews {
    private static final Logger LOG = Logger.getLogger(SnapshotViews.class.getName());

    private final Stack stack;
    private final BlockBackend backend;
    private final ViewCache cache;

    public SnapshotViews(Stack stack, BlockBackend backend, ViewCache cache) {
        this.stack = stack;
        this.backend = backend;
        this.cache = cache;
    }

    /** The export whose snapshots these are. */
    public BlockBackend backend() {
        return backend;
    }

    /** A view that can be opened now: which content stands in for which node. */
    private interface Candidate {
        /** Equal for the same content, so an open view is shared. */
        Object key();

        /** True if every point's content has the size of the node it stands in for. */
        boolean sameSize();

        ReadOnlyView open() throws IOException;
    }

    /** File name → size of each view, sorted as the snapshots are found. */
    public Map<String, Long> files() {
        Map<String, Long> files = new LinkedHashMap<>();
        candidates().forEach((name, c) -> {
            long size = sizeOf(name, c);
            if (size >= 0) {
                files.put(name, size);
            }
        });
        return files;
    }

    /** Opens (or shares) the view {@code .snapshots/DISK/name}; close the lease when done. */
    public ViewCache.Lease open(String name) throws IOException {
        Candidate c = candidates().get(name);
        if (c == null) {
            throw new BlockIOException(Errno.ENOENT, "disk '" + backend.name() + "' has no snapshot '" + name + "'");
        }
        return cache.acquire(c.key(), c::open);
    }

    private long sizeOf(String name, Candidate c) {
        if (c.sameSize()) {
            return backend.size();
        }
        try (ViewCache.Lease view = cache.acquire(c.key(), c::open)) {
            return view.size();
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "snapshot view '" + backend.name() + "/" + name + "' cannot be opened: "
                    + e.getMessage());
            return -1;
        }
    }

    private String viewName(String file) {
        return "snapshot view '" + backend.name() + "/" + file + "'";
    }

    private Map<String, Candidate> candidates() {
        Map<String, Candidate> out = new LinkedHashMap<>();
        BlockNode top = backend.rootNode();
        for (ExternalSnapshotRecord r : stack.externalSnapshots()) {
            if (r.export().equals(backend.name())) {
                External e = external(top, r);
                if (e != null) {
                    out.put(r.name(), e);
                }
            }
        }
        for (Internal i : internals(top)) {
            String file = out.containsKey(i.file) ? i.id() : i.file;
            if (file != null) {
                out.putIfAbsent(file, i);
            }
        }
        return out;
    }

    // ---- internal snapshots ----

    /** Where one image the walk lands on finds the snapshot: {@code holder} is it or an image of its backing chain. */
    private record Point(BlockNode target, BlockNode holder, Snapshot snapshot) {}

    private final class Internal implements Candidate {
        final String file;
        final List<Point> points;

        Internal(String file, List<Point> points) {
            this.file = file;
            this.points = points;
        }

        /** The id, if every image has the snapshot under the same id; else null. */
        String id() {
            String id = points.get(0).snapshot().id();
            return points.stream().allMatch(p -> p.snapshot().id().equals(id)) ? id : null;
        }

        @Override
        public Object key() {
            List<Object> key = new ArrayList<>(List.of("internal", file));
            for (Point p : points) {
                key.addAll(List.of(p.target(), p.holder(), p.snapshot().id(), p.snapshot().date()));
            }
            return key;
        }

        @Override
        public boolean sameSize() {
            return points.stream().allMatch(p -> p.snapshot().diskSize() == p.target().size());
        }

        @Override
        public ReadOnlyView open() throws IOException {
            Map<BlockNode, ReadOnlyView.Source> sources = new IdentityHashMap<>();
            try {
                for (Point p : points) {
                    sources.put(p.target(), source(((InternalSnapshots) p.holder()).openSnapshot(p.snapshot().id())));
                }
            } catch (IOException | RuntimeException e) {
                sources.values().forEach(ReadOnlyView.Source::close);
                throw e;
            }
            return ReadOnlyView.open(stack.graph(), backend.rootNode(), sources, viewName(file));
        }
    }

    private static ReadOnlyView.Source source(SnapshotReader reader) {
        return new ReadOnlyView.Source() {
            @Override
            public long size() {
                return reader.size();
            }

            @Override
            public void read(long offset, ByteBuffer dst) throws IOException {
                reader.read(offset, dst);
            }

            @Override
            public void close() {
                reader.close();
            }
        };
    }

    /** The internal snapshots every target has (on itself or its backing chain), in the first target's order. */
    private List<Internal> internals(BlockNode top) {
        List<SnapshotTargets.Target> targets;
        try {
            targets = SnapshotTargets.below(top);
        } catch (ConfigException e) {
            return List.of();
        }
        List<Map<String, Point>> perTarget = new ArrayList<>();
        for (SnapshotTargets.Target t : targets) {
            perTarget.add(chainSnapshots(t.node()));
        }
        List<Internal> out = new ArrayList<>();
        for (String file : perTarget.get(0).keySet()) {
            List<Point> points = new ArrayList<>();
            for (Map<String, Point> m : perTarget) {
                Point p = m.get(file);
                if (p != null) {
                    points.add(p);
                }
            }
            if (points.size() == perTarget.size()) {
                out.add(new Internal(file, points));
            }
        }
        return out;
    }

    /** File name → where the snapshot is, over the target and its backing chain, nearest first. */
    private static Map<String, Point> chainSnapshots(BlockNode target) {
        Map<String, Point> found = new LinkedHashMap<>();
        for (BlockNode n = target; n != null; n = GraphWalk.backingChainNext(n)) {
            if (n instanceof InternalSnapshots keeper) {
                try {
                    for (Snapshot s : keeper.listSnapshots()) {
                        found.putIfAbsent(fileName(s), new Point(target, n, s));
                    }
                } catch (IOException e) {
                    LOG.log(Level.FINE, "node '" + n.nodeName() + "' cannot list its snapshots: " + e.getMessage());
                }
            }
        }
        return found;
    }

    /**
     * The node, as {@link SnapshotTargets.Target#describe()} names it, of the first image that
     * has an internal snapshot named {@code name} where the views look for one (the images below
     * {@code top} and their backing chains); null if none has.
     */
    static String internalSnapshotHolder(BlockNode top, String name) throws IOException {
        List<SnapshotTargets.Target> targets;
        try {
            targets = SnapshotTargets.below(top);
        } catch (ConfigException e) {
            return null;
        }
        for (SnapshotTargets.Target t : targets) {
            for (BlockNode n = t.node(); n != null; n = GraphWalk.backingChainNext(n)) {
                if (n instanceof InternalSnapshots keeper
                        && keeper.listSnapshots().stream().anyMatch(s -> s.name().equals(name))) {
                    return new SnapshotTargets.Target(n, keeper).describe();
                }
            }
        }
        return null;
    }

    /** A snapshot's file name: its name, or its id if the name cannot be one. */
    private static String fileName(Snapshot s) {
        return SnapshotNames.problem(s.name()) == null ? s.name() : s.id();
    }

    // ---- external snapshots ----

    private final class External implements Candidate {
        final String name;
        /** Each image the walk lands on now → the base the snapshot froze below it. */
        final Map<BlockNode, BlockNode> bases;

        External(String name, Map<BlockNode, BlockNode> bases) {
            this.name = name;
            this.bases = bases;
        }

        @Override
        public Object key() {
            List<Object> key = new ArrayList<>(List.of("external", name));
            bases.forEach((image, base) -> key.addAll(List.of(image, base)));
            return key;
        }

        @Override
        public boolean sameSize() {
            return bases.entrySet().stream().allMatch(e -> e.getValue().size() == e.getKey().size());
        }

        @Override
        public ReadOnlyView open() throws IOException {
            Map<BlockNode, ReadOnlyView.Source> sources = new IdentityHashMap<>();
            try {
                bases.forEach((image, base) -> sources.put(image,
                        ReadOnlyView.liveNode(stack.graph(), base, true, viewName(name))));
            } catch (RuntimeException e) {
                sources.values().forEach(ReadOnlyView.Source::close);
                throw e;
            }
            return ReadOnlyView.open(stack.graph(), backend.rootNode(), sources, viewName(name));
        }
    }

    /**
     * The view of external snapshot {@code r}: each image below the filters must have one of the
     * record's overlays on its backing chain (itself, or below it after later snapshots), whose
     * backing is the frozen base. Null if an image has none (a base is gone).
     */
    private External external(BlockNode top, ExternalSnapshotRecord r) {
        List<BlockNode> images;
        try {
            images = GraphWalk.images(top);
        } catch (ConfigException e) {
            return null;
        }
        List<BlockNode> overlays = new ArrayList<>();
        for (String name : r.overlays()) {
            BlockNode o = stack.graph().node(name);
            if (o != null) {
                overlays.add(o);
            }
        }
        Map<BlockNode, BlockNode> bases = new LinkedHashMap<>();
        for (BlockNode image : images) {
            BlockNode base = null;
            for (BlockNode n = image; n != null && base == null; n = GraphWalk.backingChainNext(n)) {
                if (overlays.contains(n) && n.cowChild() != null) {
                    base = n.cowChild().node();
                }
            }
            if (base == null) {
                return null;
            }
            bases.put(image, base);
        }
        return new External(r.name(), bases);
    }
}
