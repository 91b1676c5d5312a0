package io.diskstack.core.config;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.Errno;
import io.diskstack.core.ExternalSnapshots;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * Snapshot operations on a mounted {@link Stack} that also change its config file, so a
 * remount opens the graph as the operation left it.
 */
public final class StackSnapshots {
    private static final Logger LOG = Logger.getLogger(StackSnapshots.class.getName());

    private StackSnapshots() {}

    /**
     * Takes external snapshot {@code name} of export {@code exportId}: one qcow2 overlay per
     * node below the filters, recorded in the config file, then swapped into the graph. All or
     * nothing, under a drain of the affected exports: on failure the graph and the config are as
     * before and no overlay file is left.
     *
     * @return the overlays made
     */
    public static List<ExternalSnapshots.Overlay> external(Stack stack, String exportId, String name)
            throws IOException {
        synchronized (stack) {
            BlockGraph graph = stack.graph();
            BlockBackend backend = graph.backend(exportId);
            if (backend == null) {
                throw new BlockIOException(Errno.EINVAL, "no export '" + exportId + "'");
            }
            if (!backend.isWritable()) {
                throw new BlockIOException(Errno.EROFS, "export '" + exportId + "' is read-only");
            }
            Path source = stack.config().source();
            if (source == null) {
                throw new BlockIOException(Errno.EINVAL,
                        "mounted without a config file: nothing to record the overlays in");
            }
            ExternalSnapshots.checkName(name);
            List<BlockNode> bases = ExternalSnapshots.snapshotPoints(backend.rootNode());
            String where = "config '" + source + "'";
            byte[] original = Files.readAllBytes(source);
            // a dry run first: refuse what the config cannot record before creating any file
            List<ConfigRewrite.Overlay> planned = new ArrayList<>();
            for (BlockNode base : bases) {
                String overlay = base.nodeName() + "-" + name;
                planned.add(new ConfigRewrite.Overlay(base.nodeName(), ConfigRewrite.refs(base.parents()), overlay,
                        overlay + "-file", ExternalSnapshots.configName(graph.baseDir(),
                                ExternalSnapshots.overlayPath(base, name)), false));
            }
            ConfigRewrite.withOverlays(original, where, planned);

            try (BlockGraph.Drained ignored = graph.drain(bases)) {
                ExternalSnapshots.Prepared prepared = ExternalSnapshots.prepare(graph, bases, name);
                try {
                    prepared.flushBases();
                    for (ExternalSnapshots.Overlay o : prepared.overlays()) {
                        // the config about to name the overlay must never outlive its file's entry
                        ConfigRewrite.syncFolder(o.path().getParent());
                    }
                    List<ConfigRewrite.Overlay> record = new ArrayList<>();
                    for (int i = 0; i < bases.size(); i++) {
                        ExternalSnapshots.Overlay o = prepared.overlays().get(i);
                        ConfigRewrite.Overlay p = planned.get(i);
                        record.add(new ConfigRewrite.Overlay(p.base(), p.parents(), o.overlay().nodeName(),
                                o.file().nodeName(), ExternalSnapshots.configName(graph.baseDir(), o.path()),
                                noFlush(o.file())));
                    }
                    ConfigRewrite.writeAtomically(source, ConfigRewrite.withOverlays(original, where, record));
                    try {
                        prepared.commit();
                    } catch (RuntimeException | Error e) {
                        try {
                            ConfigRewrite.writeAtomically(source, original);
                        } catch (IOException restore) {
                            // the config names the overlays: keep their files, so a remount still opens
                            e.addSuppressed(restore);
                            prepared.keepFiles();
                        }
                        throw e;
                    }
                    for (ExternalSnapshots.Overlay o : prepared.overlays()) {
                        LOG.info(() -> "export '" + exportId + "': external snapshot '" + name + "': '"
                                + o.overlay().nodeName() + "' (" + o.path() + ") over '" + o.base().nodeName() + "'");
                    }
                    return prepared.overlays();
                } catch (IOException | RuntimeException | Error e) {
                    prepared.abort();
                    throw e;
                }
            }
        }
    }

    private static boolean noFlush(BlockNode file) {
        return ExternalSnapshots.skipsDiskSync(file);
    }
}
