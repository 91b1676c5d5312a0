package io.diskstack.core;

import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Pattern;

/**
 * External snapshots (QEMU's blockdev-snapshot): below a backend's filters, each top non-filter
 * node gets a new qcow2 overlay whose backing is that node, and the overlay takes the node's
 * place in every parent edge. Filters (throttle, luks, copy-on-read, quorum…) stay on top.
 *
 * <p>Two steps, so a caller can record the change (rewrite the config) in between:
 * {@link #prepare} creates the overlay files and opens their nodes beside the graph's edges;
 * {@link Prepared#commit()} swaps them in; {@link Prepared#abort()} closes them and deletes the
 * files. Run all of it under a drain of the affected backends ({@link BlockGraph#drain}).
 */
public final class ExternalSnapshots {
    private static final Logger LOG = Logger.getLogger(ExternalSnapshots.class.getName());
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.\\-]+");

    private ExternalSnapshots() {}

    /** One overlay: {@code overlay} (qcow2, over {@code file}) above {@code base}, stored in {@code path}. */
    public record Overlay(BlockNode base, BlockNode overlay, BlockNode file, Path path) {}

    /** Throws a {@link BlockIOException} (EINVAL) unless the name is usable in node-names and file names. */
    public static void checkName(String name) throws BlockIOException {
        if (name.isEmpty()) {
            throw new BlockIOException(Errno.EINVAL, "the snapshot name is empty");
        }
        if (!NAME.matcher(name).matches()) {
            throw new BlockIOException(Errno.EINVAL, "snapshot name '" + printable(name)
                    + "': use only letters, digits, '-', '.' and '_' (it becomes part of node-names and file names)");
        }
    }

    /**
     * The nodes an external snapshot puts overlays on: walking down from {@code top}, a filter
     * (a node whose driver is a {@link DriverKind#FILTER}) passes to each of its data children
     * (quorum: every child); the first non-filter node on each path is a snapshot point. Each
     * node once, in walk order.
     */
    public static List<BlockNode> snapshotPoints(BlockNode top) {
        List<BlockNode> out = new ArrayList<>();
        collect(top, out, Collections.newSetFromMap(new IdentityHashMap<>()));
        return out;
    }

    private static void collect(BlockNode node, List<BlockNode> out, Set<BlockNode> seen) {
        if (!seen.add(node)) {
            return;
        }
        if (node.driver().kind() != DriverKind.FILTER) {
            out.add(node);
            return;
        }
        for (BlockChild c : node.children()) {
            if (c.roles().contains(ChildRole.DATA)) {
                collect(c.node(), out, seen);
            }
        }
    }

    /** The file an overlay of {@code base} goes to: {@code <image stem>-NAME.qcow2} beside its image. */
    public static Path overlayPath(BlockNode base, String name) throws BlockIOException {
        String filename = base.filename();
        if (filename == null) {
            throw new BlockIOException(Errno.EINVAL, "node '" + base.nodeName()
                    + "' has no image file to put an overlay beside");
        }
        Path image = Path.of(filename).toAbsolutePath().normalize();
        String leaf = image.getFileName().toString();
        int dot = leaf.lastIndexOf('.');
        String stem = dot > 0 ? leaf.substring(0, dot) : leaf;
        return image.resolveSibling(stem + "-" + name + ".qcow2");
    }

    /**
     * Creates and opens one overlay per base, all or nothing: on failure, the nodes opened are
     * removed and the files created are deleted before the exception leaves.
     * The overlay of {@code base} is node {@code BASE-NAME} over file node {@code BASE-NAME-file}.
     */
    public static Prepared prepare(BlockGraph graph, List<BlockNode> bases, String name) throws IOException {
        checkName(name);
        Prepared p = new Prepared(graph);
        try {
            for (BlockNode base : bases) {
                p.overlays.add(createOne(graph, base, name, p));
            }
            return p;
        } catch (IOException | RuntimeException | Error e) {
            p.abort();
            throw e;
        }
    }

    private static Overlay createOne(BlockGraph graph, BlockNode base, String name, Prepared p) throws IOException {
        String nodeName = base.nodeName() + "-" + name;
        String fileNodeName = nodeName + "-file";
        for (String n : List.of(nodeName, fileNodeName)) {
            if (!BlockGraph.isValidName(n)) {
                throw new BlockIOException(Errno.EINVAL, "node-name '" + n + "' for the overlay of '"
                        + base.nodeName() + "' is not valid (a letter first, at most 31 letters, digits, '-', '.', '_')");
            }
            if (graph.node(n) != null) {
                throw new BlockIOException(Errno.EEXIST, "node-name '" + n + "' for the overlay of '"
                        + base.nodeName() + "' is taken");
            }
        }
        if (base.driver().kind() == DriverKind.FORMAT && base.driver().name().equals("raw")) {
            BlockChild file = base.childWithRole(ChildRole.PRIMARY);
            if (file != null && file.node().size() != base.size()) {
                throw new BlockIOException(Errno.EINVAL, "node '" + base.nodeName() + "' shows part of its file "
                        + "(raw offset/size), which a qcow2 backing file cannot name");
            }
        }
        Path path = overlayPath(base, name);
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new BlockIOException(Errno.EEXIST, "overlay '" + path + "' for node '" + base.nodeName()
                    + "' already exists");
        }
        Path baseImage = Path.of(base.filename()).toAbsolutePath().normalize();
        String backingFile = path.getParent().equals(baseImage.getParent())
                ? baseImage.getFileName().toString() : baseImage.toString();
        String backingFmt = base.driver().kind() == DriverKind.PROTOCOL ? "raw" : base.driver().name();
        BlockDriver qcow2 = graph.drivers().get("qcow2", "external snapshot");
        Map<String, Object> createOpts = new LinkedHashMap<>();
        createOpts.put("backing_file", backingFile);
        createOpts.put("backing_fmt", backingFmt);
        NodeOptions options = new NodeOptions("create '" + path + "' (qcow2)", createOpts);
        p.files.add(path);
        qcow2.create(new ImageCreateContext(path, base.size(), options, graph.objects(), graph.drivers()));
        options.assertAllConsumed();

        Map<String, Object> fileOpts = new LinkedHashMap<>();
        fileOpts.put("driver", "file");
        fileOpts.put("node-name", fileNodeName);
        fileOpts.put("filename", configName(graph.baseDir(), path));
        BlockChild primary = base.childWithRole(ChildRole.PRIMARY);
        if (base.settings().noFlush() || (primary != null && primary.node().settings().noFlush())) {
            fileOpts.put("cache.no-flush", Boolean.TRUE);
        }
        BlockNode file = graph.open(fileOpts);
        p.opened.add(file);
        Map<String, Object> overlayOpts = new LinkedHashMap<>();
        overlayOpts.put("driver", "qcow2");
        overlayOpts.put("node-name", nodeName);
        overlayOpts.put("file", fileNodeName);
        overlayOpts.put("backing", base.nodeName());
        BlockNode overlay = graph.open(overlayOpts);
        p.opened.add(0, overlay);
        return new Overlay(base, overlay, file, path);
    }

    /** True if the node was opened with {@code cache.no-flush} (or inherited it). */
    public static boolean skipsDiskSync(BlockNode node) {
        return node.settings().noFlush();
    }

    /** How a config names the file: relative to the config's folder if it lies below it. */
    public static String configName(Path baseDir, Path file) {
        Path dir = baseDir.toAbsolutePath().normalize();
        return file.startsWith(dir) ? dir.relativize(file).toString() : file.toString();
    }

    /** The overlays, open but not in the graph's edges yet. */
    public static final class Prepared {
        private final BlockGraph graph;
        private final List<Overlay> overlays = new ArrayList<>();
        private final List<Path> files = new ArrayList<>();
        private final List<BlockNode> opened = new ArrayList<>();
        private boolean committed;

        private Prepared(BlockGraph graph) {
            this.graph = graph;
        }

        public List<Overlay> overlays() {
            return List.copyOf(overlays);
        }

        /** Flushes each base, so what it holds now is on disk before it becomes a backing file. */
        public void flushBases() throws IOException {
            for (Overlay o : overlays) {
                o.overlay().child("backing").flush();
            }
        }

        /**
         * Puts each overlay in its base's place, in every edge (parents and backends), all or
         * none. Hold a drain of the affected backends around it.
         */
        public void commit() {
            List<Overlay> done = new ArrayList<>();
            try {
                for (Overlay o : overlays) {
                    graph.replace(o.base(), o.overlay());
                    done.add(o);
                }
                committed = true;
                for (Overlay o : overlays) {
                    Set<BlockNode> readOnly = Collections.newSetFromMap(new IdentityHashMap<>());
                    readOnly.add(o.overlay());
                    releaseWrites(o.base(), readOnly);
                }
            } catch (RuntimeException | Error e) {
                for (int i = done.size() - 1; i >= 0; i--) {
                    Overlay o = done.get(i);
                    try {
                        graph.replace(o.overlay(), o.base());
                    } catch (RuntimeException undo) {
                        e.addSuppressed(undo);
                    }
                }
                throw e;
            }
        }

        /** Makes {@link #abort()} leave the overlay files on disk. */
        public void keepFiles() {
            files.clear();
        }

        /** Closes the overlays and deletes their files; nothing if committed. */
        public void abort() {
            if (committed) {
                return;
            }
            for (BlockNode n : opened) {
                try {
                    graph.remove(n);
                } catch (IOException | RuntimeException e) {
                    LOG.log(Level.WARNING, "external snapshot: cannot close node '" + n.nodeName() + "': " + e.getMessage());
                }
            }
            opened.clear();
            for (Path f : files) {
                try {
                    Files.deleteIfExists(f);
                } catch (IOException e) {
                    LOG.log(Level.WARNING, "external snapshot: cannot delete '" + f + "': " + e.getMessage());
                }
            }
            files.clear();
            overlays.clear();
        }
    }

    /**
     * Drops the write locks of a base and of the nodes below it that only it uses, as QEMU
     * does when a node becomes a backing file: a backup may read the base with qemu-img now.
     */
    private static void releaseWrites(BlockNode node, Set<BlockNode> readOnly) {
        for (BlockChild p : node.parents()) {
            if (p.parent() == null || !readOnly.contains(p.parent())) {
                return; // still reachable from something that may write
            }
        }
        readOnly.add(node);
        try {
            node.releaseWritePermission();
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "external snapshot: node '" + node.nodeName() + "' keeps its write lock: "
                    + e.getMessage());
        }
        for (BlockChild c : node.children()) {
            releaseWrites(c.node(), readOnly);
        }
    }

    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            b.append(c < 0x20 || c == 0x7f ? '?' : c);
        }
        return b.length() > 64 ? b.substring(0, 64) + "…" : b.toString();
    }
}
