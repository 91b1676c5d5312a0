package io.diskstack.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;

/**
 * One open instance of a {@link BlockDriver} (QEMU's BlockDriverState).
 *
 * <p>Drivers implement the protected I/O methods. Nobody calls them directly: requests reach a
 * node through a {@link BlockChild} edge (or a {@link BlockBackend}, whose root is an edge), and
 * the core request path in between checks bounds, pads requests to {@link #requestAlignment()}
 * with read-modify-write, serialises overlapping read-modify-write, bounces buffers that do not
 * meet {@link #memoryAlignment()}, applies the node's discard and detect-zeroes settings, and
 * performs copy-on-read. So a driver sees only aligned, in-bounds requests.
 *
 * <p>Buffers passed to a driver belong to the caller and are valid only until the call returns:
 * a driver that hands one to another thread waits for that thread before returning, and never
 * keeps a reference.
 *
 * <p>A node reaches its children only through its edges ({@link #children()}), which the
 * {@link BlockGraph} owns and may rewire: drivers keep the {@link BlockChild} they were given at
 * open, never the child node.
 */
public abstract class BlockNode {
    private final String nodeName;
    private final BlockDriver driver;
    private volatile NodeSettings settings;
    /** The flat options the node was opened with, to reopen it (views, reopen); never shown. */
    final java.util.Map<String, Object> openOptions;
    final RequestTracker tracker = new RequestTracker();
    final List<BlockChild> children = new CopyOnWriteArrayList<>();
    final List<BlockChild> parents = new CopyOnWriteArrayList<>();
    /** Dirty bitmaps that jobs track this node's writes with; the request path marks them. */
    final List<DirtyBitmap> dirtyBitmaps = new CopyOnWriteArrayList<>();
    volatile boolean closed;

    protected BlockNode(NodeOpenContext ctx) {
        this.nodeName = ctx.nodeName();
        this.driver = ctx.driver();
        this.settings = ctx.settings();
        this.openOptions = ctx.flatOptions();
    }

    /**
     * The options this node was opened with, changed to open it again read-only as
     * {@code newName} with each child edge named in {@code children} (its name is its option key:
     * {@code file}, {@code children.0}) pointing at the node-name given instead: what a view
     * needs to reopen the node over other children. Never shown: they may name secrets.
     */
    final java.util.Map<String, Object> reopenOptions(String newName, java.util.Map<String, String> children) {
        java.util.Map<String, Object> options = new java.util.LinkedHashMap<>(openOptions);
        for (String key : children.keySet()) {
            options.keySet().removeIf(k -> k.equals(key) || k.startsWith(key + "."));
        }
        options.putAll(children);
        options.put("node-name", newName);
        options.put("read-only", Boolean.TRUE);
        return options;
    }

    public final String nodeName() {
        return nodeName;
    }

    /** The flat options the node was opened with (object ids, never secrets themselves). */
    public final java.util.Map<String, Object> openOptions() {
        return openOptions;
    }

    public final BlockDriver driver() {
        return driver;
    }

    public final boolean isReadOnly() {
        return settings.readOnly();
    }

    final NodeSettings settings() {
        return settings;
    }

    /** Makes the node read-only from now on (a base an external snapshot froze). Graph only. */
    final void markReadOnly() {
        NodeSettings s = settings;
        settings = new NodeSettings(true, s.discard(), s.detectZeroes(), s.noFlush());
    }

    /**
     * True if the node was opened with {@code cache.no-flush}: a protocol driver then skips the
     * sync to disk on flush and FUA (the data still goes to the host's page cache).
     */
    public final boolean skipsDiskSync() {
        return settings.noFlush();
    }

    /** The edges from this node to its children, in the order they were opened. */
    public final List<BlockChild> children() {
        return List.copyOf(children);
    }

    /** The child edge with this name, or null. */
    public final BlockChild child(String name) {
        for (BlockChild c : children) {
            if (c.name().equals(name)) {
                return c;
            }
        }
        return null;
    }

    /** The first child edge with this role, or null. */
    public final BlockChild childWithRole(ChildRole role) {
        for (BlockChild c : children) {
            if (c.roles().contains(role)) {
                return c;
            }
        }
        return null;
    }

    /** The edges that point at this node: from parents, and from backends as their root. */
    public final List<BlockChild> parents() {
        return List.copyOf(parents);
    }

    // ---- the node's shape: how walks pass it (QEMU's filter, cow and primary children) ----

    /** How snapshots, views and jobs treat a node, so that core walks the graph without knowing drivers. */
    public enum Passage {
        /**
         * An image: a format or protocol node. An external snapshot puts its overlay above it, a
         * job copies from or into it; an internal snapshot is taken here if the node keeps
         * snapshots ({@link io.diskstack.core.snapshot.InternalSnapshots}), else in its primary
         * child when that is its only child with data (QEMU's snapshot fallback).
         */
        IMAGE,
        /**
         * Stays above the images and hands every walk to its one {@link ChildRole#DATA} child:
         * plain filters (throttle, copy-on-read) and nodes that transform their child's bytes (luks).
         */
        PASS,
        /**
         * Stays above the images and hands every walk to all its data and metadata children, which
         * are then handled together, at one instant, under one drain: quorum, dedup.
         */
        FAN_OUT
    }

    /** How walks pass this node. By default a filter-kind driver's nodes pass, all others are images. */
    public Passage passage() {
        return driver.kind() == DriverKind.FILTER ? Passage.PASS : Passage.IMAGE;
    }

    /**
     * The child of a plain filter (QEMU's bdrv_filter_child): the one edge with the
     * {@link ChildRole#FILTERED} role, whose node shows the same bytes at the same offsets; null
     * if this node is not a plain filter.
     */
    public final BlockChild filteredChild() {
        BlockChild found = null;
        for (BlockChild c : children) {
            if (c.roles().contains(ChildRole.FILTERED)) {
                if (found != null) {
                    return null;
                }
                found = c;
            }
        }
        return found;
    }

    /** The backing (copy-on-write) child, or null (QEMU's bdrv_cow_child). */
    public final BlockChild cowChild() {
        return childWithRole(ChildRole.COW);
    }

    /** The child the node's file name comes from, or null (QEMU's bdrv_primary_child). */
    public final BlockChild primaryChild() {
        return childWithRole(ChildRole.PRIMARY);
    }

    /** The children that hold this node's data or metadata (not its backing), in order. */
    public final List<BlockChild> dataChildren() {
        List<BlockChild> out = new java.util.ArrayList<>();
        for (BlockChild c : children) {
            if (c.roles().contains(ChildRole.DATA) || c.roles().contains(ChildRole.METADATA)) {
                out.add(c);
            }
        }
        return out;
    }

    /**
     * How an overlay names this node's image: the file a qcow2 header records as its backing
     * file, its format, and the folder overlays go to; null if an overlay cannot name it. By
     * default a {@linkplain Passage#IMAGE image} node of a format names its primary child's file
     * in its own format; protocols say for themselves.
     */
    public BackingImage backingImage() {
        if (passage() != Passage.IMAGE || driver.kind() != DriverKind.FORMAT) {
            return null;
        }
        BlockChild primary = primaryChild();
        String file = primary == null ? null : primary.node().filename();
        if (file == null) {
            return null;
        }
        java.nio.file.Path path = java.nio.file.Path.of(file).toAbsolutePath().normalize();
        return new BackingImage(path.toString(), driver.name(), path.getParent());
    }

    /**
     * What this node takes on one of its children and lets the child's other users do, given
     * what its own users take and share together (QEMU's bdrv_child_perm). The default follows
     * the edge's roles: a filtered child gets what the node's users take and share; a backing
     * child is only read (others may write it if the node's users accept changing data, as in
     * QEMU); any other child (a format's file, a quorum's children) is the node's alone to write:
     * it shares no write, so no second writer can corrupt it. A read-only node takes no write
     * whatever this says.
     */
    protected Permissions childPermissions(BlockChild child, Permissions users) {
        if (child.roles().contains(ChildRole.FILTERED)) {
            return users;
        }
        if (child.roles().contains(ChildRole.COW) && !child.roles().contains(ChildRole.DATA)) {
            return Permissions.reader(users);
        }
        return Permissions.soleWriter(!isReadOnly());
    }

    // ---- children that change while the node runs (a quorum rebuilding after a lost disk) ----

    /**
     * True if the node knows things about its children at run time that opening it again would
     * lose (a quorum: which children are in sync): blockdev-reopen refuses it.
     */
    public boolean keepsRuntimeState() {
        return false;
    }

    /**
     * Options that describe what the node knows at run time and must still know after a remount
     * (a quorum: which children are out of sync), to be written into its config entry; a null
     * value removes the key. The node tells the graph when they change
     * ({@link NodeOpenContext#stateRecorder()}), and reads them back as options when it opens.
     */
    public java.util.Map<String, Object> runtimeOptions() {
        return java.util.Map.of();
    }

    /** The list of children this node can take and give up while it runs; null if they are fixed. */
    public ChildList growableChildren() {
        return null;
    }

    /**
     * A new child was added at the end of {@link #growableChildren()} (under a drain): the node
     * starts using it, or throws to refuse it and nothing changes.
     */
    protected void childAdded(BlockChild edge) throws IOException {
        throw new BlockIOException(Errno.ENOTSUP, nodeName + ": " + driver.name() + " nodes take no new children");
    }

    /**
     * A child is about to go (under a drain): the node stops using it, or throws to refuse (EBUSY:
     * fewer children than it needs) and nothing changes.
     */
    protected void childRemoved(BlockChild edge) throws IOException {
        throw new BlockIOException(Errno.ENOTSUP, nodeName + ": " + driver.name() + " nodes give up no children");
    }

    /**
     * True if the node brings a child that takes another's place up to date itself (a quorum
     * resyncs it from the others), so that the replacement may hold other data than the child it
     * replaces without changing what the node shows.
     */
    protected boolean resyncsReplacedChild(BlockChild edge) {
        return false;
    }

    /** A new node took the place of a child on this edge (under a drain), holding data of its own. */
    protected void childReplaced(BlockChild edge) {}

    /**
     * Sends a read to this node through the request path, as any request would come (bounds,
     * alignment, the serialisation of overlapping requests): for the node's own background work,
     * such as a quorum's resync, which must not race the node's other requests.
     */
    protected final void readThroughRequestPath(long offset, ByteBuffer dst, int flags) throws IOException {
        RequestPath.read(this, offset, dst, flags);
    }

    // ---- what the driver implements ----

    /** Virtual size in bytes. Called on every request: keep it a field read. */
    public abstract long size();

    /** Requests reach the driver aligned to this many bytes (a power of two); 1 means any. */
    public int requestAlignment() {
        return 1;
    }

    /** Buffers reach the driver at addresses aligned to this (a power of two; O_DIRECT needs it). */
    public int memoryAlignment() {
        return 1;
    }

    /** Allocation granularity, for copy-on-read and sparse copies; at least the request alignment. */
    public int clusterSize() {
        return requestAlignment();
    }

    /**
     * True if the driver honours {@link RequestFlags#FUA} on writes itself; otherwise the core
     * flushes the node after a FUA write.
     */
    public boolean supportsFua() {
        return false;
    }

    /** True for protocol nodes whose size follows writes past the end (a host file). */
    public boolean isGrowable() {
        return false;
    }

    /**
     * Fills {@code dst} from its position to its limit with the bytes at {@code offset}.
     *
     * @param flags read {@link RequestFlags}: a filter passes them on to its child (so that
     *              {@link RequestFlags#COPY_ON_READ} reaches the node that holds the data);
     *              other drivers ignore them
     */
    protected abstract void read(long offset, ByteBuffer dst, int flags) throws IOException;

    /** Writes {@code src} from its position to its limit at {@code offset}. */
    protected abstract void write(long offset, ByteBuffer src, int flags) throws IOException;

    /**
     * Makes the range read as zeroes. The default writes a zero buffer, or fails with ENOTSUP
     * under {@link RequestFlags#NO_FALLBACK}.
     */
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        if (RequestFlags.has(flags, RequestFlags.NO_FALLBACK)) {
            throw new BlockIOException(Errno.ENOTSUP, nodeName + ": no efficient write-zeroes");
        }
        ZeroWriter.writeZeroBuffers(this, offset, length, flags);
    }

    /** Tells the node the range is unused. Advisory: the default does nothing. */
    protected void discard(long offset, long length) throws IOException {}

    /**
     * Writes this node's own cached state to its children. The core then flushes the children,
     * so a driver never flushes them itself unless its own ordering needs it mid-operation.
     */
    protected void flush() throws IOException {}

    /**
     * True if {@link #flush()} flushes this node's children itself, so the core must not (it
     * otherwise flushes every child after the node). Quorum does: it flushes its children in
     * parallel and succeeds when enough of them do.
     */
    protected boolean flushesChildren() {
        return false;
    }

    /**
     * The graph will not write through this node again (a base that an external snapshot turned
     * into a backing file, which backups may now read with qemu-img): write back what the node
     * caches, leave its image clean, and give up the write permission others can see (QEMU's
     * image locks). The node is read-only after this; its children are told afterwards. The
     * default holds nothing.
     */
    protected void releaseWritePermission() throws IOException {}

    /**
     * Records a new backing file in the image (QEMU's bdrv_change_backing_file), or none when
     * {@code image} is null; from then on the node reads through {@code edge} (the same backing
     * edge, pointing at the new backing node), or through no backing at all when it is null. The
     * graph calls it drained, once the data the node stops reading is in the node or in the new
     * backing. Formats without backing files keep the default.
     */
    protected void changeBackingFile(BackingImage image, BlockChild edge) throws IOException {
        throw new BlockIOException(Errno.ENOTSUP, nodeName + ": " + driver.name() + " nodes have no backing file");
    }

    /**
     * True if overlapping requests must not run at once on this node: each write (write,
     * write-zeroes, discard) waits for every earlier overlapping request, and each read waits for
     * earlier overlapping writes (reads do not wait for each other). The core orders them, in
     * arrival order, with the same tracker that serialises read-modify-write. Quorum needs it: its
     * children must apply overlapping writes in the same order, and a read must not see some
     * children before a write and others after it. Default false: overlapping writes may run at
     * once, as on a disk.
     */
    protected boolean serialisesOverlappingRequests() {
        return false;
    }

    /**
     * The status of a prefix of [offset, offset+length) at this node. The default says the whole
     * range is allocated data; formats and protocols that know better override it.
     */
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        return BlockStatus.of(length, BlockStatus.DATA | BlockStatus.ALLOCATED);
    }

    /**
     * Changes the size: a protocol node grows or shrinks its file. Formats use it on their file
     * child; nodes that cannot resize keep the default.
     */
    protected void truncate(long size) throws IOException {
        throw new BlockIOException(Errno.ENOTSUP, nodeName + ": " + driver.name() + " nodes cannot be resized");
    }

    /**
     * A backend above starts draining (QEMU's bdrv_drain_begin): requests in flight must finish
     * soon, so a node that holds requests back (throttle) lets them through until
     * {@link #drainEnd()}. The core calls it on every node below the backend; calls nest.
     */
    protected void drainBegin() {}

    /** The drain that {@link #drainBegin()} announced is over. */
    protected void drainEnd() {}

    /** Releases what the node opened itself. The graph closes children afterwards. */
    protected void close() throws IOException {}

    /**
     * The content of a child changed without passing through this node (a snapshot revert below
     * it): drop what the node caches of its children and read it again (QEMU's
     * bdrv_invalidate_cache). Called drained, after the node flushed, children before parents.
     * Nodes that cache nothing of their children keep the default.
     */
    protected void invalidateCache() throws IOException {}

    /** The host file behind this node, for the graph view; by default its primary child's. */
    public String filename() {
        BlockChild primary = childWithRole(ChildRole.PRIMARY);
        return primary == null ? null : primary.node().filename();
    }

    /**
     * Counters this node keeps, for {@code MNT/.control/DISK/stats}: name → value, such as
     * {@code children.0.errors}; a value is a whole number ({@link Long}) or a ratio
     * ({@link Double}, such as dedup's {@code dedup.ratio}). Reading them must be cheap. Not
     * forwarded by filters: each node reports its own.
     */
    public java.util.Map<String, ? extends Number> stats() {
        return java.util.Map.of();
    }

    /**
     * Tells {@code diskstack info} what the node knows of its image, as a format driver does for
     * {@code qemu-img info}: cluster size, encryption, a dirty image, the backing file the image
     * names, and its format's own fields. The core adds format, sizes and internal snapshots.
     * The default tells nothing (raw, filters).
     */
    public void describeImage(io.diskstack.core.info.ImageFacts facts) throws IOException {}

    /**
     * Bytes of host storage the node's image takes ({@code qemu-img info}'s disk size): a
     * protocol node says for its file; by default the primary child's, or -1 if there is none.
     */
    public long allocatedSize() throws IOException {
        BlockChild primary = primaryChild();
        return primary == null ? -1 : primary.node().allocatedSize();
    }

    /** Extra facts for the graph view, like "cluster 64 KiB" or "read-pattern quorum". */
    public String details() {
        return "";
    }

    /** {@code driver(node-name, children…)}: the chain below, for logs and debugging. */
    @Override
    public String toString() {
        if (children.isEmpty()) {
            return driver.name() + "(" + nodeName + ")";
        }
        return driver.name() + "(" + nodeName + ", "
                + children.stream().map(c -> c.node().toString()).collect(Collectors.joining(", ")) + ")";
    }

    /** Generic settings every node accepts, read by the core before the driver's own options. */
    record NodeSettings(boolean readOnly, Discard discard, DetectZeroes detectZeroes, boolean noFlush) {
        static final NodeSettings DEFAULT = new NodeSettings(false, Discard.UNMAP, DetectZeroes.OFF, false);
    }

    /** QEMU's {@code discard} option. */
    enum Discard { IGNORE, UNMAP }

    /** QEMU's {@code detect-zeroes} option. */
    enum DetectZeroes { OFF, ON, UNMAP }

    static Set<String> genericOptionKeys() {
        return Set.of("node-name", "driver", "read-only", "discard", "detect-zeroes", "cache.no-flush");
    }
}
