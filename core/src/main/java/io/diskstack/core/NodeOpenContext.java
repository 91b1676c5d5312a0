package io.diskstack.core;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a driver gets when it opens a node: its name, its options, and the means to open its
 * children. Children opened here become edges of the new node once {@code open} returns; if the
 * open fails, the graph closes the children this context opened.
 */
public final class NodeOpenContext {
    private final BlockGraph graph;
    private final String nodeName;
    private final BlockDriver driver;
    private final NodeOptions options;
    private final BlockNode.NodeSettings settings;
    private final Map<String, Object> flatOptions;
    final List<BlockChild> openedEdges = new ArrayList<>();
    /** Objects the node uses (a secret, a throttle group): object-del refuses them while it is open. */
    final List<String> usedObjects = new ArrayList<>();

    NodeOpenContext(BlockGraph graph, String nodeName, BlockDriver driver, NodeOptions options,
                    BlockNode.NodeSettings settings, Map<String, Object> flatOptions) {
        this.graph = graph;
        this.flatOptions = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(flatOptions));
        this.nodeName = nodeName;
        this.driver = driver;
        this.options = options;
        this.settings = settings;
    }

    public String nodeName() {
        return nodeName;
    }

    public BlockDriver driver() {
        return driver;
    }

    /** The driver's own options; the generic ones (node-name, driver, read-only, …) are taken. */
    public NodeOptions options() {
        return options;
    }

    public boolean readOnly() {
        return settings.readOnly();
    }

    /**
     * True if the node is opened only to describe its image ({@code diskstack info}) and will
     * get no I/O: a driver may skip what only I/O needs (deriving a key) and refuse I/O.
     */
    public boolean inspectOnly() {
        return graph.inspecting();
    }

    /**
     * False if images should not open the backing files their headers name (the caller wants
     * the image alone, as {@code qemu-img info} without {@code --backing-chain}); an explicit
     * {@code backing} option still applies.
     */
    public boolean opensBackingFiles() {
        return graph.opensBackingFiles();
    }

    BlockNode.NodeSettings settings() {
        return settings;
    }

    Map<String, Object> flatOptions() {
        return flatOptions;
    }

    /** How messages name this node: {@code blockdev 'q0' (qcow2)}. */
    public String owner() {
        return options.owner();
    }

    /** Opens the child named by option {@code key} (a node-name or nested options); required. */
    public BlockChild openChild(String key, Set<ChildRole> roles) throws IOException {
        BlockChild child = openOptionalChild(key, roles);
        if (child == null) {
            throw options.error(key, "is required");
        }
        return child;
    }

    /** Like {@link #openChild}, but null if the option is absent. */
    public BlockChild openOptionalChild(String key, Set<ChildRole> roles) throws IOException {
        Object ref = options.takeChild(key);
        if (ref == null) {
            return null;
        }
        return attach(key, roles, graph.resolveChild(this, key, ref, roles));
    }

    /** Opens the children listed as {@code key.0}, {@code key.1}, …; edges are named the same. */
    public List<BlockChild> openChildList(String key, Set<ChildRole> roles) throws IOException {
        List<Object> refs = options.takeList(key);
        List<BlockChild> out = new ArrayList<>();
        for (int i = 0; i < refs.size(); i++) {
            String name = key + "." + i;
            out.add(attach(name, roles, graph.resolveChild(this, name, refs.get(i), roles)));
        }
        return out;
    }

    /**
     * Opens a child from options the driver made up (qcow2's backing file named in its header):
     * the child gets an automatic node-name and is closed with this node.
     *
     * @param readOnly open it read-only regardless of this node
     */
    public BlockChild openImplicitChild(String name, Map<String, Object> flatOptions, Set<ChildRole> roles,
                                        boolean readOnly) throws IOException {
        Map<String, Object> opts = new java.util.LinkedHashMap<>(flatOptions);
        if (readOnly) {
            opts.put("read-only", Boolean.TRUE);
        }
        return attach(name, roles, graph.resolveChild(this, name, opts, roles));
    }

    /**
     * The node named by option {@code key}, opened already or defined later in the config, but
     * not made a child: a reference such as QEMU's copy-on-read {@code bottom}. Null if the
     * option is absent.
     */
    public BlockNode optNodeReference(String key) throws IOException {
        String name = options.optString(key, null);
        if (name == null) {
            return null;
        }
        BlockNode node = graph.lookup(name);
        if (node == null) {
            throw options.error(key, "refers to unknown node '" + name + "'");
        }
        return node;
    }

    /** A file name from the options, resolved against the config file's folder. */
    public Path resolvePath(String filename) {
        return graph.baseDir().resolve(filename).normalize();
    }

    /** The object named by option {@code key}, of the given type. */
    public <T> T object(String key, Class<T> type) {
        String id = options.requireString(key);
        T object = graph.objects().get(id, type, options.owner(), key);
        usedObjects.add(id);
        return object;
    }

    public ObjectRegistry objects() {
        return graph.objects();
    }

    public DriverRegistry drivers() {
        return graph.drivers();
    }

    /**
     * What a node calls when its {@link BlockNode#runtimeOptions()} changed: the mount records them
     * in the config (atomically, before it returns), so a remount knows them.
     */
    public StateRecorder stateRecorder() {
        return graph::recordState;
    }

    /** Records a node's run-time state where a remount finds it. */
    public interface StateRecorder {
        void record(BlockNode node) throws IOException;
    }

    /** The graph's block jobs: a node that runs one of its own (a quorum's resync) starts it here. */
    public io.diskstack.core.job.JobRegistry jobs() {
        return graph.jobs();
    }

    private BlockChild attach(String name, Set<ChildRole> roles, BlockNode child) {
        BlockChild edge = new BlockChild(null, name, roles, child);
        openedEdges.add(edge);
        return edge;
    }
}
