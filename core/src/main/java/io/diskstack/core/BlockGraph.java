package io.diskstack.core;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Pattern;

/**
 * All nodes, edges and backends of one mount, and the only code that changes topology: open,
 * replace, insert, remove. Changes run under a drain of the backends they affect, and a change
 * that would make a cycle or leave an edge dangling is refused.
 */
public final class BlockGraph implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(BlockGraph.class.getName());
    private static final Pattern NAME = Pattern.compile("[A-Za-z][A-Za-z0-9_.\\-]{0,30}");

    private final DriverRegistry drivers;
    private final io.diskstack.core.job.JobRegistry jobs = new io.diskstack.core.job.JobRegistry();
    private final ObjectRegistry objects;
    private final Path baseDir;
    /*
     * Changed only under the graph's monitor, but read by the control files (node(), nodes(),
     * backend(), backends()) under the maps' own locks only: those must answer while a long
     * operation (close, which drains and flushes) holds the monitor.
     */
    private final Map<String, BlockNode> nodes = Collections.synchronizedMap(new LinkedHashMap<>());
    private final Map<String, BlockBackend> backends = Collections.synchronizedMap(new LinkedHashMap<>());
    /** Object id → the nodes that use it. */
    private final Map<String, Set<String>> objectUsers = new java.util.concurrent.ConcurrentHashMap<>();
    private final Set<BlockNode> implicitNodes = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<String, Map<String, Object>> pending = new LinkedHashMap<>();
    private final LinkedHashSet<String> opening = new LinkedHashSet<>();
    /** Bumped by every change of nodes, edges or backends; see {@link #generation()}. */
    private final java.util.concurrent.atomic.AtomicLong generation = new java.util.concurrent.atomic.AtomicLong();
    private boolean closed;
    /** A graph opened only to describe images ({@link #forInspection}), and whether it follows backing files. */
    private final boolean inspecting;
    private final boolean backingFiles;

    public BlockGraph(DriverRegistry drivers, ObjectRegistry objects, Path baseDir) {
        this(drivers, objects, baseDir, false, true);
    }

    private BlockGraph(DriverRegistry drivers, ObjectRegistry objects, Path baseDir, boolean inspecting,
                       boolean backingFiles) {
        this.drivers = drivers;
        this.objects = objects;
        this.baseDir = baseDir.toAbsolutePath().normalize();
        this.inspecting = inspecting;
        this.backingFiles = backingFiles;
    }

    /**
     * A graph whose nodes are opened only to describe their images ({@code diskstack info}),
     * never for I/O (QEMU's BDRV_O_NO_IO): a driver may then skip what only I/O needs, such as
     * the key of an encrypted image ({@link NodeOpenContext#inspectOnly()}). Without
     * {@code backingFiles}, images do not open the backing files they name (BDRV_O_NO_BACKING).
     */
    public static BlockGraph forInspection(DriverRegistry drivers, ObjectRegistry objects, Path baseDir,
                                           boolean backingFiles) {
        return new BlockGraph(drivers, objects, baseDir, true, backingFiles);
    }

    boolean inspecting() {
        return inspecting;
    }

    boolean opensBackingFiles() {
        return backingFiles;
    }

    public DriverRegistry drivers() {
        return drivers;
    }

    private volatile NodeOpenContext.StateRecorder stateRecorder = node -> { };

    /** Where nodes' run-time state is recorded (the mount's config); by default nowhere. */
    public void onStateChange(NodeOpenContext.StateRecorder recorder) {
        this.stateRecorder = recorder;
    }

    void recordState(BlockNode node) throws IOException {
        stateRecorder.record(node);
    }

    /** The block jobs running on this graph's nodes. */
    public io.diskstack.core.job.JobRegistry jobs() {
        return jobs;
    }

    public ObjectRegistry objects() {
        return objects;
    }

    /** The folder relative file names resolve against (the config file's). */
    public Path baseDir() {
        return baseDir;
    }

    /**
     * A counter that every change of the topology bumps (a node opened or removed, an edge
     * re-pointed, a backend added, nodes frozen, the graph closed): what shows the graph, such as
     * the control files, is rebuilt when it changes and reused while it does not. One volatile read.
     */
    public long generation() {
        return generation.get();
    }

    /** True for names QEMU accepts as node-names and ids: a letter, then letters, digits, - . _ */
    public static boolean isValidName(String name) {
        return name != null && NAME.matcher(name).matches();
    }

    // ---- opening ----

    /**
     * Opens the nodes of a config, in any order: a child may be named before it is defined.
     * Each entry is a flat option map with a {@code node-name}.
     */
    public synchronized void openAll(List<Map<String, Object>> blockdevs) throws IOException {
        try {
            int index = 0;
            for (Map<String, Object> flat : blockdevs) {
                Object name = flat.get("node-name");
                if (!(name instanceof String s)) {
                    throw new ConfigException("blockdev #" + index + (flat.get("driver") instanceof String d
                            ? " (" + d + ")" : "") + ": 'node-name' is required");
                }
                checkNewName(s);
                if (pending.containsKey(s)) {
                    throw new ConfigException("blockdev '" + s + "': duplicate node-name");
                }
                pending.put(s, flat);
                index++;
            }
            while (!pending.isEmpty()) {
                openPending(pending.keySet().iterator().next());
            }
        } finally {
            pending.clear();
        }
    }

    /** Opens one node from flat options; children it names must exist already. */
    public synchronized BlockNode open(Map<String, Object> flatOptions) throws IOException {
        checkOpen();
        return openNode(flatOptions, null, BlockNode.NodeSettings.DEFAULT);
    }

    private BlockNode openPending(String name) throws IOException {
        Map<String, Object> flat = pending.remove(name);
        return openNode(flat, null, BlockNode.NodeSettings.DEFAULT);
    }

    private BlockNode openNode(Map<String, Object> flat, String autoName, BlockNode.NodeSettings inherited)
            throws IOException {
        Object givenName = flat.get("node-name");
        String name;
        if (givenName != null) {
            if (!(givenName instanceof String s)) {
                throw new ConfigException("blockdev: 'node-name' must be a string");
            }
            name = s;
            checkNewName(name);
        } else if (autoName != null) {
            name = autoName;
        } else {
            throw new ConfigException("blockdev" + (flat.get("driver") instanceof String d ? " (" + d + ")" : "")
                    + ": 'node-name' is required");
        }
        if (nodes.containsKey(name)) {
            throw new ConfigException("blockdev '" + name + "': duplicate node-name");
        }
        Object driverName = flat.get("driver");
        if (!(driverName instanceof String)) {
            throw new ConfigException("blockdev '" + name + "': 'driver' is required");
        }
        BlockDriver driver = drivers.get((String) driverName, "blockdev '" + name + "'");
        NodeOptions options = new NodeOptions("blockdev '" + name + "' (" + driver.name() + ")", flat);
        options.optString("node-name", null);
        options.requireString("driver");
        BlockNode.NodeSettings settings = readSettings(options, inherited);

        NodeOpenContext ctx = new NodeOpenContext(this, name, driver, options, settings, flat);
        opening.add(name);
        BlockNode node = null;
        try {
            node = driver.open(ctx);
            options.assertAllConsumed();
        } catch (IOException | RuntimeException | Error e) {
            if (node != null) {
                closeQuietly(node);
            }
            abandonEdges(ctx.openedEdges);
            throw e;
        } finally {
            opening.remove(name);
        }
        nodes.put(name, node);
        if (givenName == null) {
            implicitNodes.add(node);
        }
        for (BlockChild edge : ctx.openedEdges) {
            edge.parent = node;
            node.children.add(edge);
            edge.node.parents.add(edge);
        }
        for (String id : ctx.usedObjects) {
            objectUsers.computeIfAbsent(id, k -> java.util.concurrent.ConcurrentHashMap.newKeySet()).add(name);
        }
        generation.incrementAndGet();
        try {
            checkPermissions(Set.of());
        } catch (ConfigException e) {
            removeUnused(node);
            throw e;
        }
        return node;
    }

    /**
     * Computes what every edge takes and shares and refuses a conflict (two writers of one image,
     * a write through a read-only node), naming both users; the nodes in {@code assumeReadOnly}
     * count as read-only (a change about to freeze them).
     *
     * @throws ConfigException with errno EBUSY
     */
    public synchronized void checkPermissions(Set<BlockNode> assumeReadOnly) {
        PermissionCheck.check(nodes(), assumeReadOnly);
    }

    /**
     * Takes permissions on a node for something outside the graph's edges (a job: a commit writes
     * its base, a mirror its target), checked against the node's other users. Close the hold to
     * give them back.
     *
     * @param holder who holds them, for messages: {@code job 'commit-disk0'}
     */
    public synchronized Hold hold(BlockNode node, Permissions permissions, String holder) {
        checkMember(node);
        BlockChild edge = new BlockChild(null, "hold", java.util.EnumSet.noneOf(ChildRole.class), node, holder,
                permissions);
        node.parents.add(edge);
        try {
            checkPermissions(Set.of());
        } catch (ConfigException e) {
            node.parents.remove(edge);
            throw e;
        }
        return new Hold(edge);
    }

    /**
     * Permissions held on a node outside the edges (a job's), and the edge the holder sends its
     * I/O through; close it to give them back.
     */
    public final class Hold implements AutoCloseable {
        private final BlockChild edge;

        private Hold(BlockChild edge) {
            this.edge = edge;
        }

        /** The edge to the held node: requests go through the request path like any other. */
        public BlockChild edge() {
            return edge;
        }

        @Override
        public void close() {
            synchronized (BlockGraph.this) {
                edge.node.parents.remove(edge);
            }
        }
    }

    /** Starts tracking the node's writes in {@code bitmap} (a job copying it). */
    public void addDirtyBitmap(BlockNode node, DirtyBitmap bitmap) {
        node.dirtyBitmaps.add(bitmap);
    }

    public void removeDirtyBitmap(BlockNode node, DirtyBitmap bitmap) {
        node.dirtyBitmaps.remove(bitmap);
    }

    /**
     * Opens a named node again with changed options (a commit's base becomes writable), in place:
     * under a drain, the old instance closes, a new one opens from the same options with
     * {@code changes} applied (a null value removes the key), and every edge that pointed at the
     * old one points at the new one. A node that becomes writable first makes its named read-only
     * storage children writable the same way. All or nothing: on failure the node is opened again
     * as it was.
     *
     * @return the new instance
     */
    public synchronized BlockNode reopen(BlockNode old, Map<String, Object> changes) throws IOException {
        checkMember(old);
        if (implicitNodes.contains(old)) {
            throw new ConfigException("node '" + old.nodeName() + "' has no node-name of its own: it cannot be "
                    + "reopened");
        }
        Map<String, Object> options = new LinkedHashMap<>(old.openOptions);
        changes.forEach((k, v) -> {
            if (v == null) {
                options.remove(k);
            } else {
                options.put(k, v);
            }
        });
        boolean writable = Boolean.FALSE.equals(changes.get("read-only"));
        try (Drained ignored = drain(List.of(old))) {
            if (writable) {
                for (BlockChild c : old.children) {
                    if (c.node.isReadOnly() && !implicitNodes.contains(c.node) && !c.roles().contains(ChildRole.COW)) {
                        reopen(c.node, Map.of("read-only", Boolean.FALSE));
                    }
                }
            }
            return swap(old, options);
        }
    }

    private BlockNode swap(BlockNode old, Map<String, Object> options) throws IOException {
        // as QEMU's reopen: what the node caches goes down first, and a failure refuses the
        // reopen with nothing changed (closing would only log it, and lose the writes)
        RequestPath.flush(old);
        List<BlockChild> users = new ArrayList<>(old.parents);
        old.parents.clear();
        Map<String, Object> previous = old.openOptions;
        removeUnused(old);
        BlockNode fresh;
        try {
            fresh = openNode(options, null, BlockNode.NodeSettings.DEFAULT);
        } catch (IOException | RuntimeException e) {
            BlockNode back = openNode(previous, null, BlockNode.NodeSettings.DEFAULT);
            adopt(back, users);
            throw e;
        }
        adopt(fresh, users);
        try {
            checkPermissions(Set.of());
        } catch (ConfigException e) {
            fresh.parents.clear();
            removeUnused(fresh);
            adopt(openNode(previous, null, BlockNode.NodeSettings.DEFAULT), users);
            throw e;
        }
        return fresh;
    }

    private static void adopt(BlockNode node, List<BlockChild> users) {
        for (BlockChild u : users) {
            u.node = node;
            node.parents.add(u);
        }
    }

    /**
     * Changes the backing file of an overlay (QEMU's bdrv_change_backing_file): the image records
     * {@code newBacking}'s image, or none when it is null, and the overlay's backing edge points at
     * it or goes. Call it drained, once the overlay holds every byte it got from the nodes it
     * stops reading (a stream), or once {@code newBacking} holds them (a commit).
     */
    public synchronized void changeBacking(BlockNode overlay, BlockNode newBacking) throws IOException {
        checkMember(overlay);
        BlockChild edge = overlay.cowChild();
        if (edge == null) {
            throw new ConfigException("node '" + overlay.nodeName() + "' has no backing file");
        }
        BackingImage image = null;
        if (newBacking != null) {
            checkMember(newBacking);
            image = newBacking.backingImage();
            if (image == null) {
                throw new ConfigException("node '" + newBacking.nodeName() + "' is not an image a backing file "
                        + "name can say");
            }
        }
        overlay.changeBackingFile(image, newBacking == null ? null : edge);
        BlockNode oldBacking = edge.node;
        oldBacking.parents.remove(edge);
        if (newBacking == null) {
            overlay.children.remove(edge);
        } else {
            edge.node = newBacking;
            newBacking.parents.add(edge);
        }
        if (implicitNodes.contains(oldBacking) && oldBacking.parents.isEmpty()) {
            removeUnused(oldBacking);
        }
        generation.incrementAndGet();
    }

    /**
     * Closes and removes a node nobody uses, and below it every node (named or not) that nobody
     * uses any more: what a pivot leaves behind (an overlay and its file node).
     */
    public synchronized void removeWithOrphans(BlockNode node) throws IOException {
        List<BlockNode> below = new ArrayList<>();
        Deque<BlockNode> todo = new ArrayDeque<>();
        todo.add(node);
        Set<BlockNode> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        while (!todo.isEmpty()) {
            for (BlockChild c : todo.poll().children) {
                if (seen.add(c.node)) {
                    below.add(c.node);
                    todo.add(c.node);
                }
            }
        }
        remove(node);
        for (BlockNode n : below) {
            if (!n.closed && n.parents.isEmpty() && nodes.get(n.nodeName()) == n) {
                removeUnused(n);
            }
        }
    }

    /** The generic options; a nested child inherits read-only and cache.no-flush, as in QEMU. */
    private static BlockNode.NodeSettings readSettings(NodeOptions options, BlockNode.NodeSettings inherited) {
        boolean readOnly = options.optBool("read-only", inherited.readOnly());
        String discard = options.optString("discard", "unmap");
        BlockNode.Discard d = switch (discard) {
            case "unmap", "on" -> BlockNode.Discard.UNMAP;
            case "ignore", "off" -> BlockNode.Discard.IGNORE;
            default -> throw options.error("discard", "value '" + discard + "' is not one of ignore, unmap");
        };
        BlockNode.DetectZeroes z = options.optEnum("detect-zeroes", BlockNode.DetectZeroes.class,
                BlockNode.DetectZeroes.OFF);
        boolean noFlush = options.optBool("cache.no-flush", inherited.noFlush());
        return new BlockNode.NodeSettings(readOnly, d, z, noFlush);
    }

    /** Resolves a child option: a node-name (opened now if the config defines it later) or nested options. */
    @SuppressWarnings("unchecked")
    BlockNode resolveChild(NodeOpenContext parent, String key, Object ref, Set<ChildRole> roles) throws IOException {
        if (ref instanceof String name) {
            if (opening.contains(name)) {
                List<String> path = new ArrayList<>();
                boolean inCycle = false;
                for (String n : opening) {
                    inCycle |= n.equals(name);
                    if (inCycle) {
                        path.add("'" + n + "'");
                    }
                }
                path.add("'" + name + "'");
                throw new ConfigException(parent.owner() + ": '" + key + "' makes a cycle: " + String.join(" → ", path));
            }
            BlockNode node = nodes.get(name);
            if (node == null && pending.containsKey(name)) {
                node = openPending(name);
            }
            if (node == null) {
                throw new ConfigException(parent.owner() + ": '" + key + "' refers to unknown node '" + name + "'");
            }
            return node;
        }
        Map<String, Object> nested = (Map<String, Object>) ref;
        String auto = "#" + parent.nodeName().replaceFirst("^#", "") + "." + key;
        boolean readOnly = parent.readOnly() || (roles.contains(ChildRole.COW) && !roles.contains(ChildRole.DATA));
        BlockNode.NodeSettings inherited = new BlockNode.NodeSettings(readOnly, BlockNode.Discard.UNMAP,
                BlockNode.DetectZeroes.OFF, parent.settings().noFlush());
        return openNode(nested, auto, inherited);
    }

    /** The node with this name, opening it first if the config defines it later; null if none. */
    BlockNode lookup(String name) throws IOException {
        BlockNode node = nodes.get(name);
        if (node == null && pending.containsKey(name) && !opening.contains(name)) {
            node = openPending(name);
        }
        return node;
    }

    private void abandonEdges(List<BlockChild> edges) {
        for (BlockChild edge : edges) {
            BlockNode child = edge.node;
            if (implicitNodes.contains(child) && child.parents.isEmpty()) {
                removeUnused(child);
            }
        }
    }

    private void checkNewName(String name) {
        if (!isValidName(name)) {
            throw new ConfigException("blockdev '" + name + "': 'node-name' must start with a letter and use only "
                    + "letters, digits, '-', '.' and '_' (at most 31)");
        }
    }

    // ---- backends ----

    /** Creates the backend an export uses, rooted at an existing node. */
    public synchronized BlockBackend addBackend(String name, String nodeName, boolean writable) {
        checkOpen();
        if (!isValidName(name)) {
            throw new ConfigException("export '" + name + "': 'id' must start with a letter and use only "
                    + "letters, digits, '-', '.' and '_' (at most 31)");
        }
        if (backends.containsKey(name)) {
            throw new ConfigException("export '" + name + "': duplicate id");
        }
        BlockNode node = nodes.get(nodeName);
        if (node == null) {
            throw new ConfigException("export '" + name + "': 'node-name' refers to unknown node '" + nodeName + "'");
        }
        if (writable && node.isReadOnly()) {
            throw new ConfigException("export '" + name + "': node '" + nodeName
                    + "' is read-only, so the export cannot be writable");
        }
        BlockChild root = new BlockChild(null, "root", ChildRole.filtered(), node, "export '" + name + "'",
                writable ? Permissions.of(java.util.EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE,
                        Permission.WRITE_UNCHANGED), java.util.EnumSet.allOf(Permission.class))
                        : Permissions.of(java.util.EnumSet.of(Permission.CONSISTENT_READ),
                        java.util.EnumSet.allOf(Permission.class)));
        node.parents.add(root);
        try {
            checkPermissions(Set.of());
        } catch (ConfigException e) {
            node.parents.remove(root);
            throw e;
        }
        BlockBackend backend = new BlockBackend(name, root, writable);
        backends.put(name, backend);
        generation.incrementAndGet();
        return backend;
    }

    /**
     * Takes an export out of the graph (block-export-del): drained, so no request of it is in
     * flight; later requests through it fail with ENODEV.
     */
    public synchronized void removeBackend(String name) {
        BlockBackend b = backends.get(name);
        if (b == null) {
            throw new ConfigException("no export '" + name + "'", Errno.ENOENT);
        }
        try (BlockBackend.Drain ignored = b.drain()) {
            b.markRemoved();
            BlockChild root = b.rootEdge();
            root.node.parents.remove(root);
            backends.remove(name);
            generation.incrementAndGet();
        }
    }

    /** Points an export at another node (blockdev-replace export=ID), drained, checked like any change. */
    public synchronized void replaceExportRoot(String exportId, BlockNode node) {
        BlockBackend b = backends.get(exportId);
        if (b == null) {
            throw new ConfigException("no export '" + exportId + "'", Errno.ENOENT);
        }
        checkMember(node);
        try (Drained ignored = drain(List.of(b.rootNode(), node))) {
            repoint(List.of(b.rootEdge()), node);
        }
    }

    /** The backend of that name, or null. Does not wait for graph changes or close (F8). */
    public BlockBackend backend(String name) {
        return backends.get(name);
    }

    /** The backends now. Does not wait for graph changes or close. */
    public List<BlockBackend> backends() {
        synchronized (backends) {
            return List.copyOf(backends.values());
        }
    }

    /** The node of that name, or null. Does not wait for graph changes or close. */
    public BlockNode node(String name) {
        return nodes.get(name);
    }

    /** The nodes now. Does not wait for graph changes or close. */
    public List<BlockNode> nodes() {
        synchronized (nodes) {
            return List.copyOf(nodes.values());
        }
    }

    // ---- topology changes ----

    /**
     * Points every edge that reaches {@code old} (from parents and backends) at
     * {@code replacement} instead, except edges from {@code replacement} itself: that is how an
     * external snapshot puts an overlay in place of the node that becomes its backing.
     */
    public synchronized void replace(BlockNode old, BlockNode replacement) {
        checkOpen();
        checkMember(old);
        checkMember(replacement);
        List<BlockChild> moving = new ArrayList<>();
        for (BlockChild edge : old.parents) {
            if (edge.parent != replacement) {
                if (edge.parent != null && reaches(replacement, edge.parent)) {
                    throw new ConfigException("replacing '" + old.nodeName() + "' by '" + replacement.nodeName()
                            + "' would make a cycle through '" + edge.parent.nodeName() + "'");
                }
                moving.add(edge);
            }
        }
        try (Drained ignored = drain(List.of(old, replacement))) {
            for (BlockChild edge : moving) {
                old.parents.remove(edge);
                edge.node = replacement;
                replacement.parents.add(edge);
            }
            try {
                checkPermissions(Set.of());
            } catch (ConfigException e) {
                for (BlockChild edge : moving) {
                    replacement.parents.remove(edge);
                    edge.node = old;
                    old.parents.add(edge);
                }
                throw e;
            } finally {
                generation.incrementAndGet();
            }
        }
    }

    /**
     * Adds {@code child} at the end of the parent's {@linkplain BlockNode#growableChildren() list
     * of children} (a quorum's new child), drained; the parent may refuse it, and a permission
     * conflict refuses it too, with nothing changed.
     */
    public synchronized BlockChild addChild(BlockNode parent, BlockNode child) throws IOException {
        checkMember(parent);
        checkMember(child);
        ChildList list = parent.growableChildren();
        if (list == null) {
            throw new ConfigException("node '" + parent.nodeName() + "' (" + parent.driver().name()
                    + ") takes no new children");
        }
        if (reaches(child, parent)) {
            throw new ConfigException("adding '" + child.nodeName() + "' below '" + parent.nodeName()
                    + "' would make a cycle");
        }
        int index = 0;
        for (BlockChild c : parent.children) {
            if (c.name().startsWith(list.key() + ".")) {
                index = Math.max(index, Integer.parseInt(c.name().substring(list.key().length() + 1)) + 1);
            }
        }
        BlockChild edge = new BlockChild(parent, list.key() + "." + index, list.roles(), child);
        try (Drained ignored = drain(List.of(parent))) {
            parent.children.add(edge);
            child.parents.add(edge);
            try {
                checkPermissions(Set.of());
                parent.childAdded(edge);
            } catch (IOException | RuntimeException e) {
                parent.children.remove(edge);
                child.parents.remove(edge);
                throw e;
            } finally {
                generation.incrementAndGet();
            }
        }
        return edge;
    }

    /** Takes a child out of the parent's growable list, drained; the parent may refuse (EBUSY). */
    public synchronized void removeChild(BlockNode parent, BlockChild edge) throws IOException {
        checkMember(parent);
        if (edge.parent != parent || parent.growableChildren() == null) {
            throw new ConfigException("node '" + parent.nodeName() + "' cannot give up child '" + edge.name() + "'");
        }
        try (Drained ignored = drain(List.of(parent))) {
            parent.childRemoved(edge);
            parent.children.remove(edge);
            edge.node.parents.remove(edge);
            generation.incrementAndGet();
        }
    }

    /**
     * Puts {@code node} in the place of the child on {@code edge} (blockdev-replace), drained, and
     * tells the parent that the child holds data of its own (a quorum then resyncs it).
     */
    public synchronized void replaceChild(BlockChild edge, BlockNode node) {
        try (Drained ignored = drain(List.of(edge.node))) {
            repoint(List.of(edge), node);
            if (edge.parent != null) {
                edge.parent.childReplaced(edge);
            }
        }
    }

    /** True if the edge's parent brings a replaced child up to date itself (quorum). */
    public static boolean resyncsReplacedChild(BlockChild edge) {
        return edge.parent != null && edge.parent.resyncsReplacedChild(edge);
    }

    /**
     * Points these edges (parents' children, exports' roots) at {@code target}: a pivot. All or
     * nothing: refused, with nothing moved, on a cycle or a permission conflict. Hold a drain of
     * the affected backends around it.
     */
    public synchronized void repoint(Collection<BlockChild> edges, BlockNode target) {
        checkOpen();
        checkMember(target);
        for (BlockChild edge : edges) {
            if (edge.parent != null && reaches(target, edge.parent)) {
                throw new ConfigException("pointing '" + edge.parent.nodeName() + "' at '" + target.nodeName()
                        + "' would make a cycle");
            }
        }
        Map<BlockChild, BlockNode> before = new IdentityHashMap<>();
        for (BlockChild edge : edges) {
            before.put(edge, edge.node);
            edge.node.parents.remove(edge);
            edge.node = target;
            target.parents.add(edge);
        }
        try {
            checkPermissions(Set.of());
        } catch (ConfigException e) {
            before.forEach((edge, old) -> {
                target.parents.remove(edge);
                edge.node = old;
                old.parents.add(edge);
            });
            throw e;
        } finally {
            generation.incrementAndGet();
        }
    }

    /**
     * Opens a filter above {@code below} and puts it in its place: the options must name
     * {@code below} as the filter's {@code file} child.
     */
    public synchronized BlockNode insertAbove(BlockNode below, Map<String, Object> filterOptions) throws IOException {
        checkMember(below);
        BlockNode filter = open(filterOptions);
        if (filter.children.stream().noneMatch(e -> e.node == below)) {
            removeUnused(filter);
            throw new ConfigException("blockdev '" + filter.nodeName() + "': it must have '" + below.nodeName()
                    + "' as a child to be inserted above it");
        }
        replace(below, filter);
        return filter;
    }

    /**
     * Opens a node between {@code parent} and its child edge {@code edgeName}: the options must
     * name the current child as one of the new node's children.
     */
    public synchronized BlockNode insertBelow(BlockNode parent, String edgeName, Map<String, Object> options)
            throws IOException {
        checkMember(parent);
        BlockChild edge = parent.child(edgeName);
        if (edge == null) {
            throw new ConfigException("node '" + parent.nodeName() + "' has no child '" + edgeName + "'");
        }
        BlockNode oldChild = edge.node;
        BlockNode inserted = open(options);
        if (inserted.children.stream().noneMatch(e -> e.node == oldChild)) {
            removeUnused(inserted);
            throw new ConfigException("blockdev '" + inserted.nodeName() + "': it must have '"
                    + oldChild.nodeName() + "' as a child to be inserted below '" + parent.nodeName() + "'");
        }
        try (Drained ignored = drain(List.of(parent))) {
            oldChild.parents.remove(edge);
            edge.node = inserted;
            inserted.parents.add(edge);
            try {
                checkPermissions(Set.of());
            } catch (ConfigException e) {
                inserted.parents.remove(edge);
                edge.node = oldChild;
                oldChild.parents.add(edge);
                removeUnused(inserted);
                throw e;
            } finally {
                generation.incrementAndGet();
            }
        }
        return inserted;
    }

    /**
     * Freezes nodes that became backing files (an external snapshot's bases): they are read-only
     * from now on, and they and the nodes below them that only read-only users reach give up
     * their write locks, as QEMU does, so a backup may read a base with qemu-img. Refused, with
     * nothing changed, if someone else still writes one of them (the permission check).
     */
    public synchronized void freeze(List<BlockNode> bases) {
        List<BlockNode> frozen = frozenWith(bases);
        Set<BlockNode> assumeReadOnly = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        assumeReadOnly.addAll(frozen);
        checkPermissions(assumeReadOnly);
        for (BlockNode n : frozen) {
            try {
                n.releaseWritePermission();
            } catch (IOException | RuntimeException e) {
                LOG.log(Level.WARNING, "node '" + n.nodeName() + "' keeps its write lock: " + e.getMessage());
            }
            n.markReadOnly();
        }
        generation.incrementAndGet();
    }

    /** The bases, and below them each node that only read-only users would reach; parents first. */
    private static List<BlockNode> frozenWith(List<BlockNode> bases) {
        List<BlockNode> out = new ArrayList<>(bases);
        Set<BlockNode> in = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        in.addAll(bases);
        for (int i = 0; i < out.size(); i++) {
            for (BlockChild c : out.get(i).children) {
                BlockNode child = c.node;
                if (!in.contains(child) && child.parents.stream().allMatch(e -> e.parent != null
                        && (in.contains(e.parent) || e.parent.isReadOnly() || e.roles().contains(ChildRole.COW)))) {
                    in.add(child);
                    out.add(child);
                }
            }
        }
        return out;
    }

    /** Closes and removes a node nobody uses, and the implicit children only it used. */
    public synchronized void remove(BlockNode node) throws IOException {
        checkMember(node);
        if (!node.parents.isEmpty()) {
            BlockChild user = node.parents.get(0);
            throw new ConfigException("node '" + node.nodeName() + "' is in use by "
                    + (user.parent == null ? "an export" : "'" + user.parent.nodeName() + "'"));
        }
        removeUnused(node);
    }

    /** The nodes that use object {@code id} (a secret, a throttle group), sorted. */
    public List<String> objectUsers(String id) {
        return new ArrayList<>(new java.util.TreeSet<>(objectUsers.getOrDefault(id, Set.of())));
    }

    private void removeUnused(BlockNode node) {
        for (Set<String> users : objectUsers.values()) {
            users.remove(node.nodeName());
        }
        closeQuietly(node);
        nodes.remove(node.nodeName(), node);
        implicitNodes.remove(node);
        for (BlockChild edge : node.children) {
            BlockNode child = edge.node;
            child.parents.remove(edge);
            if (implicitNodes.contains(child) && child.parents.isEmpty()) {
                removeUnused(child);
            }
        }
        node.children.clear();
        generation.incrementAndGet();
    }

    /** True if {@code to} is {@code from} or below it. */
    public static boolean reaches(BlockNode from, BlockNode to) {
        Deque<BlockNode> todo = new ArrayDeque<>();
        Set<BlockNode> seen = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        todo.push(from);
        while (!todo.isEmpty()) {
            BlockNode n = todo.pop();
            if (n == to) {
                return true;
            }
            if (seen.add(n)) {
                for (BlockChild c : n.children) {
                    todo.push(c.node);
                }
            }
        }
        return false;
    }

    /** A drained section over the backends that reach any of the nodes; close it to resume them. */
    public Drained drain(Collection<BlockNode> affected) {
        List<BlockBackend> hit = new ArrayList<>();
        for (BlockBackend b : backends()) {
            for (BlockNode n : affected) {
                if (reaches(b.rootNode(), n)) {
                    hit.add(b);
                    break;
                }
            }
        }
        List<BlockBackend.Drain> drains = new ArrayList<>();
        for (BlockBackend b : hit) {
            drains.add(b.drain());
        }
        return () -> drains.forEach(BlockBackend.Drain::close);
    }

    /** A drained section: closing it resumes the backends. */
    public interface Drained extends AutoCloseable {
        @Override
        void close();
    }

    // ---- closing ----

    /**
     * Drains and flushes every backend, then closes nodes parents-first, so each format writes
     * its caches to children that are still open. Failures are logged; closing goes on.
     */
    @Override
    public synchronized void close() {
        closeAndReport();
    }

    /** Like {@link #close()}, and says whether everything was flushed and closed cleanly. */
    public synchronized boolean closeAndReport() {
        if (closed) {
            return true;
        }
        jobs.stopAll();
        closed = true;
        boolean clean = true;
        for (BlockBackend b : backends.values()) {
            b.drain();
            if (b.isWritable()) {
                try {
                    b.rootEdge().flush();
                } catch (IOException | RuntimeException e) {
                    clean = false;
                    LOG.log(Level.WARNING, "export '" + b.name() + "': flush on close failed: " + e.getMessage());
                }
            }
        }
        Map<BlockNode, Integer> parentCount = new HashMap<>();
        for (BlockNode n : nodes.values()) {
            parentCount.put(n, (int) n.parents.stream().filter(e -> e.parent != null).count());
        }
        Deque<BlockNode> ready = new ArrayDeque<>();
        for (BlockNode n : nodes.values()) {
            if (parentCount.get(n) == 0) {
                ready.add(n);
            }
        }
        Set<BlockNode> done = new HashSet<>();
        while (!ready.isEmpty()) {
            BlockNode n = ready.poll();
            if (!done.add(n)) {
                continue;
            }
            clean &= closeQuietly(n);
            for (BlockChild c : n.children) {
                Integer left = parentCount.merge(c.node, -1, Integer::sum);
                if (left != null && left == 0) {
                    ready.add(c.node);
                }
            }
        }
        for (BlockNode n : nodes.values()) {
            if (!done.contains(n)) {
                clean &= closeQuietly(n);
            }
        }
        nodes.clear();
        backends.clear();
        generation.incrementAndGet();
        return clean;
    }

    private static boolean closeQuietly(BlockNode node) {
        if (node.closed) {
            return true;
        }
        try {
            node.close();
            return true;
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "node '" + node.nodeName() + "': close failed: " + e.getMessage());
            return false;
        } finally {
            node.closed = true;
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the graph is closed");
        }
    }

    private void checkMember(BlockNode node) {
        if (nodes.get(node.nodeName()) != node) {
            throw new ConfigException("node '" + node.nodeName() + "' is not in this graph");
        }
    }
}
