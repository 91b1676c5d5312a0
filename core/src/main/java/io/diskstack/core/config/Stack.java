package io.diskstack.core.config;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A config brought to life: its objects, the images it creates, its graph and its backends.
 * Opening is all or nothing: on any error, what was opened is closed and images this open
 * created are deleted again.
 */
public final class Stack implements AutoCloseable {
    private final StackConfig config;
    private final ObjectRegistry objects;
    private final BlockGraph graph;
    private volatile List<ExternalSnapshotRecord> externalSnapshots;
    private volatile List<ExportConfig> exports;
    private final java.util.Map<String, ExportFrontEnd> frontEnds = new java.util.concurrent.ConcurrentHashMap<>();

    private Stack(StackConfig config, ObjectRegistry objects, BlockGraph graph) {
        this.config = config;
        this.objects = objects;
        this.graph = graph;
        this.externalSnapshots = config.externalSnapshots();
        this.exports = config.exports();
    }

    public static Stack open(StackConfig config, DriverRegistry drivers) throws IOException {
        ObjectRegistry objects = ObjectRegistry.load();
        List<Path> created = new ArrayList<>();
        BlockGraph graph = null;
        try {
            for (var o : config.objects()) {
                objects.create(o, config.baseDir());
            }
            for (ImageSpec image : config.images()) {
                Path file = config.baseDir().resolve(image.filename()).normalize();
                if (!Files.exists(file)) {
                    BlockDriver driver = drivers.get(image.format(), "create '" + image.filename() + "'");
                    NodeOptions options = new NodeOptions("create '" + image.filename() + "' (" + image.format() + ")",
                            image.options());
                    created.add(file);
                    try {
                        driver.create(new ImageCreateContext(file, image.size(), options, objects, drivers));
                    } catch (FileAlreadyExistsException e) {
                        created.remove(file); // another process made it in the meantime: not ours to delete
                        throw new ConfigException("create '" + image.filename() + "': " + file
                                + " appeared while it was being created; left as it is");
                    }
                    options.assertAllConsumed();
                }
            }
            graph = new BlockGraph(drivers, objects, config.baseDir());
            graph.openAll(config.blockdevs());
            if (config.exports().isEmpty()) {
                throw new ConfigException("config: no exports: nothing to show in the mount");
            }
            for (ExportConfig e : config.exports()) {
                graph.addBackend(e.id(), e.nodeName(), e.writable());
            }
            checkSnapshotRecords(config, graph);
            Stack stack = new Stack(config, objects, graph);
            graph.onStateChange(stack::recordState);
            return stack;
        } catch (IOException | RuntimeException | Error e) {
            if (graph != null) {
                graph.close();
            }
            objects.close();
            for (Path p : created) {
                Files.deleteIfExists(p);
            }
            throw e;
        }
    }

    private static void checkSnapshotRecords(StackConfig config, BlockGraph graph) {
        for (ExternalSnapshotRecord r : config.externalSnapshots()) {
            String at = "config: external snapshot '" + r.name() + "'";
            if (graph.backend(r.export()) == null) {
                throw new ConfigException(at + ": no export '" + r.export() + "'");
            }
            for (String overlay : r.overlays()) {
                if (graph.node(overlay) == null) {
                    throw new ConfigException(at + ": overlay '" + overlay + "' is not a node of the graph");
                }
            }
        }
    }

    /**
     * Writes a node's {@link io.diskstack.core.BlockNode#runtimeOptions()} into its config entry,
     * atomically; a mount without a config file, or a node without an entry, has nowhere to keep
     * them (logged).
     */
    private void recordState(io.diskstack.core.BlockNode node) throws IOException {
        java.util.Map<String, Object> options = node.runtimeOptions();
        if (options.isEmpty()) {
            return;
        }
        synchronized (this) {
            Path source = config.source();
            if (source == null || node.nodeName().startsWith("#")) {
                java.util.logging.Logger.getLogger(Stack.class.getName()).warning("node '" + node.nodeName()
                        + "': nowhere to record " + options.keySet() + " for the next mount (no config file or no "
                        + "node-name)");
                return;
            }
            ConfigEdit edit = ConfigEdit.of(Files.readAllBytes(source), "config '" + source + "'");
            options.forEach((k, v) -> {
                if (v == null) {
                    edit.remove(node.nodeName(), k);
                } else {
                    edit.set(node.nodeName(), k, v);
                }
            });
            ConfigRewrite.writeAtomically(source, edit.toBytes());
        }
    }

    /** The external snapshots taken so far (recorded in the config), oldest first. */
    public List<ExternalSnapshotRecord> externalSnapshots() {
        return externalSnapshots;
    }

    /** Replaces the record of external snapshots, once the config says the same. */
    public void externalSnapshots(List<ExternalSnapshotRecord> now) {
        externalSnapshots = List.copyOf(now);
    }

    /** The config the stack was opened from; {@link #exports()} and {@link #externalSnapshots()} say what changed since. */
    public StackConfig config() {
        return config;
    }

    /** The exports now: the config's, as block-export-add and -del changed them since. */
    public List<ExportConfig> exports() {
        return exports;
    }

    /** Replaces the list of exports, once the graph and the config say the same. */
    public void exports(List<ExportConfig> now) {
        exports = List.copyOf(now);
    }

    /** Another front end now serves this stack's exports of its type. */
    public void registerFrontEnd(ExportFrontEnd frontEnd) {
        frontEnds.put(frontEnd.type(), frontEnd);
    }

    /**
     * Runs the action while no client of any other front end has these exports open (the mount's
     * own files are the caller's to guard), each front end holding new clients back meanwhile.
     */
    public void whileFrontEndsClosed(java.util.Collection<String> ids, String reason,
                                     io.diskstack.core.ExportGuard.Action action) throws IOException {
        io.diskstack.core.ExportGuard.Action chained = action;
        for (ExportFrontEnd f : frontEnds.values()) {
            io.diskstack.core.ExportGuard.Action inner = chained;
            chained = () -> f.whileClosed(ids, reason, inner);
        }
        chained.run();
    }

    /** The front end serving exports of {@code type}, or null if none runs. */
    public ExportFrontEnd frontEnd(String type) {
        return frontEnds.get(type);
    }

    public BlockGraph graph() {
        return graph;
    }

    public ObjectRegistry objects() {
        return objects;
    }

    public List<BlockBackend> backends() {
        return graph.backends();
    }

    /** The mount's block jobs. */
    public io.diskstack.core.job.JobRegistry jobs() {
        return graph.jobs();
    }

    /** Stops the jobs (each leaves the graph as before it), flushes and closes everything; true if it all went cleanly. */
    public boolean closeAndReport() {
        graph.jobs().stopAll();
        boolean clean = graph.closeAndReport();
        objects.close();
        return clean;
    }

    @Override
    public void close() {
        closeAndReport();
    }
}
