package io.diskstack.core.snapshot;

import io.diskstack.core.BackingImage;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.OverlayRequest;
import io.diskstack.core.options.OptionTree;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * External snapshots (QEMU's blockdev-snapshot): below a backend's filters, each image the walk
 * reaches ({@link GraphWalk#images}) gets a new overlay whose backing is that image, and the
 * overlay takes the image's place in every parent edge. Filters, luks, quorum and dedup stay on
 * top. The overlay's format is a driver that {@linkplain BlockDriver#makesOverlays() makes
 * overlays}, or the one the command names.
 *
 * <p>Names stay bounded however long the chain grows: an overlay is named after the chain's
 * original image and the snapshot only ({@code img0-s9}, file {@code c0-s9.qcow2}), with a short
 * suffix if a node-name is taken or too long.
 *
 * <p>Two steps, so a caller can record the change (rewrite the config) in between:
 * {@link #prepare} creates the overlay files and opens their nodes beside the graph's edges;
 * {@link Prepared#commit()} swaps them in; {@link Prepared#abort()} closes them and deletes the
 * files. Preparing leaves the guest's disk as it is, so it may run while the guest writes; run
 * the commit under a drain of the affected backends ({@link BlockGraph#drain}), after a last
 * flush of the disk (nodes above the bases may cache what belongs in them).
 */
public final class ExternalSnapshots {
    private static final Logger LOG = Logger.getLogger(ExternalSnapshots.class.getName());
    private static final int MAX_NODE_NAME = 31;

    private ExternalSnapshots() {}

    /** One overlay: {@code overlay} above {@code base}, stored in {@code path}, opened from {@code options}. */
    public record Overlay(BlockNode base, BlockNode overlay, Path path, Map<String, Object> options) {}

    /** Throws a {@link BlockIOException} (EINVAL) unless the name follows {@link SnapshotNames}' rule. */
    public static void checkName(String name) throws BlockIOException {
        if (name.isEmpty()) {
            throw new BlockIOException(Errno.EINVAL, "the snapshot name is empty");
        }
        String problem = SnapshotNames.problem(name);
        if (problem != null) {
            throw new BlockIOException(Errno.EINVAL, problem);
        }
    }

    /** The images an external snapshot of {@code top} puts overlays on, in walk order. */
    public static List<BlockNode> snapshotPoints(BlockNode top) throws BlockIOException {
        try {
            return GraphWalk.images(top);
        } catch (ConfigException e) {
            throw new BlockIOException(Errno.EINVAL, e.getMessage(), e);
        }
    }

    /** The format that makes overlays: the one named, or the first driver that makes them. */
    public static BlockDriver overlayFormat(BlockGraph graph, String named) throws BlockIOException {
        if (named != null) {
            BlockDriver d = graph.drivers().get(named, "external snapshot");
            if (!d.makesOverlays()) {
                throw new BlockIOException(Errno.EINVAL, "format '" + named + "' cannot make overlays");
            }
            return d;
        }
        for (String n : graph.drivers().names()) {
            if (graph.drivers().get(n, "").makesOverlays()) {
                return graph.drivers().get(n, "");
            }
        }
        throw new BlockIOException(Errno.EINVAL, "no driver makes overlays");
    }

    /**
     * The chain's original image below {@code base}: the lowest node with a node-name of its own on
     * its backing chain ({@code base} itself if it has no backing). Overlays are named after it.
     */
    static BlockNode original(BlockNode base) {
        BlockNode n = base;
        for (BlockNode next = GraphWalk.backingChainNext(n); next != null && BlockGraph.isValidName(next.nodeName());
             next = GraphWalk.backingChainNext(next)) {
            n = next;
        }
        return n;
    }

    /** The file an overlay of {@code base} goes to: {@code <original image stem>-NAME.qcow2} in {@code folder} or beside the image. */
    public static Path overlayPath(BlockNode base, String name, Path folder, String extension) throws BlockIOException {
        BackingImage image = backingImage(base);
        Path dir = folder != null ? folder : image.folder();
        if (dir == null) {
            throw new BlockIOException(Errno.EINVAL, "node '" + base.nodeName() + "' has no image file to put an "
                    + "overlay beside: give a folder with overlay-dir=");
        }
        BackingImage originalImage = original(base).backingImage();
        String stem = original(base).nodeName();
        if (originalImage != null && originalImage.folder() != null) {
            String leaf = Path.of(originalImage.filename()).getFileName().toString();
            int dot = leaf.lastIndexOf('.');
            stem = dot > 0 ? leaf.substring(0, dot) : leaf;
        }
        return dir.resolve(stem + "-" + name + "." + extension).toAbsolutePath().normalize();
    }

    private static BackingImage backingImage(BlockNode base) throws BlockIOException {
        BackingImage image = base.backingImage();
        if (image == null) {
            throw new BlockIOException(Errno.EINVAL, "node '" + base.nodeName() + "' (" + base.driver().name()
                    + ") is not an image an overlay can name as its backing file");
        }
        return image;
    }

    /**
     * A node-name of at most 31 characters, {@code wanted} if it is free and short enough, else
     * cut and given a numeric suffix ({@code -2}, {@code -3}, …) until it is free.
     */
    public static String boundedName(BlockGraph graph, String wanted, Set<String> alsoTaken) {
        if (wanted.length() <= MAX_NODE_NAME && isFree(graph, wanted, alsoTaken)) {
            return wanted;
        }
        for (int i = 2; ; i++) {
            String suffix = "-" + i;
            String candidate = wanted.substring(0, Math.min(wanted.length(), MAX_NODE_NAME - suffix.length())) + suffix;
            if (isFree(graph, candidate, alsoTaken)) {
                return candidate;
            }
        }
    }

    private static boolean isFree(BlockGraph graph, String name, Set<String> alsoTaken) {
        return graph.node(name) == null && !alsoTaken.contains(name);
    }

    /**
     * Plans the overlays' names and files without creating anything: the node-names are free
     * and the files do not exist.
     */
    public static List<Plan> plan(BlockGraph graph, List<BlockNode> bases, String name, Path folder,
                                  BlockDriver format) throws IOException {
        checkName(name);
        List<Plan> plans = new ArrayList<>();
        Set<String> taken = new HashSet<>();
        Set<Path> paths = new HashSet<>();
        for (BlockNode base : bases) {
            BackingImage image = backingImage(base);
            String nodeName = boundedName(graph, original(base).nodeName() + "-" + name, taken);
            taken.add(nodeName);
            String fileNodeName = boundedName(graph, nodeName + "-file", taken);
            taken.add(fileNodeName);
            Path path = overlayPath(base, name, folder, format.name());
            if (Files.exists(path, LinkOption.NOFOLLOW_LINKS) || !paths.add(path)) {
                throw new BlockIOException(Errno.EEXIST, "overlay '" + path + "' for node '" + base.nodeName()
                        + "' already exists");
            }
            Path parent = path.getParent();
            if (!Files.isDirectory(parent)) {
                throw new BlockIOException(Errno.ENOENT, "overlay folder '" + parent + "' does not exist");
            }
            String backingFile = image.folder() != null && image.folder().equals(parent)
                    ? Path.of(image.filename()).getFileName().toString() : image.filename();
            plans.add(new Plan(base, path, new OverlayRequest(path, configName(graph.baseDir(), path), backingFile,
                    image.format(), base.size(), nodeName, fileNodeName, base.nodeName(), base.skipsDiskSync(),
                    graph.objects(), graph.drivers())));
        }
        return plans;
    }

    /** One overlay to make: its base, its file, and what its format gets to create it. */
    public record Plan(BlockNode base, Path path, OverlayRequest request) {}

    /**
     * Creates and opens one overlay per plan, all or nothing: on failure, the nodes opened are
     * removed and the files created are deleted before the exception leaves.
     */
    public static Prepared prepare(BlockGraph graph, List<Plan> plans, BlockDriver format) throws IOException {
        Prepared p = new Prepared(graph);
        try {
            for (Plan plan : plans) {
                p.files.add(plan.path());
            }
            List<Map<String, Object>> created = AtOnce.all(plans, plan -> format.createOverlay(plan.request()));
            for (int i = 0; i < plans.size(); i++) {
                Plan plan = plans.get(i);
                Map<String, Object> options = created.get(i);
                BlockNode overlay = graph.open(OptionTree.flatten(options));
                p.opened.add(overlay);
                for (var c : overlay.children()) {
                    if (c != overlay.cowChild()) {
                        p.opened.add(c.node()); // its file node, removed after it
                    }
                }
                p.overlays.add(new Overlay(plan.base(), overlay, plan.path(), options));
            }
            return p;
        } catch (IOException | RuntimeException | Error e) {
            p.abort();
            throw e;
        }
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

        /**
         * Puts each overlay in its base's place, in every edge (parents and backends), and freezes
         * the bases, all or none (refused if someone else still writes a base). Hold a drain of
         * the affected backends around it.
         */
        public void commit() {
            List<Overlay> done = new ArrayList<>();
            try {
                for (Overlay o : overlays) {
                    graph.replace(o.base(), o.overlay());
                    done.add(o);
                }
                graph.freeze(overlays.stream().map(Overlay::base).toList());
                committed = true;
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
                    LOG.log(Level.WARNING, "external snapshot: cannot close node '" + n.nodeName() + "': "
                            + e.getMessage());
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
}
