package io.diskstack.core.snapshot;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.config.ConfigEdit;
import io.diskstack.core.config.ConfigRewrite;
import io.diskstack.core.config.ExternalSnapshotRecord;
import io.diskstack.core.config.Stack;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * Snapshot operations on a mounted {@link Stack} that also change its config file, so a
 * remount opens the graph as the operation left it.
 */
public final class StackSnapshots {
    private static final Logger LOG = Logger.getLogger(StackSnapshots.class.getName());

    private StackSnapshots() {}

    /** An external snapshot command: {@code NAME}, or {@code name=NAME[,overlay-dir=DIR][,format=FMT]}. */
    public record ExternalCommand(String name, Path overlayDir, String format) {
        public static ExternalCommand parse(String text, Path baseDir) {
            if (!text.contains("=")) {
                return new ExternalCommand(text, null, null);
            }
            Map<String, Object> flat;
            try {
                flat = KeyVal.parse(text, "name");
            } catch (IllegalArgumentException e) {
                throw new ConfigException("snapshot-external: " + e.getMessage());
            }
            NodeOptions o = new NodeOptions("snapshot-external", flat);
            String name = o.requireString("name");
            String dir = o.optString("overlay-dir", null);
            String format = o.optString("format", null);
            o.assertAllConsumed();
            return new ExternalCommand(name, dir == null ? null : baseDir.resolve(dir).normalize(), format);
        }
    }

    /**
     * Takes external snapshot {@code name} of export {@code exportId}: one overlay per image below
     * the filters, recorded in the config file, then swapped into the graph. All or nothing: on
     * failure the graph and the config are as before and no overlay file is left. The affected
     * exports are drained only for the config's rename and the swap.
     *
     * @return the overlays made
     */
    public static List<ExternalSnapshots.Overlay> external(Stack stack, String exportId, ExternalCommand command)
            throws IOException {
        PhaseTimer timer = new PhaseTimer(LOG, "snapshot-external '" + command.name() + "' of '" + exportId + "'");
        synchronized (stack) {
            timer.done("wait for other changes");
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
            String name = command.name();
            ExternalSnapshots.checkName(name);
            for (ExternalSnapshotRecord r : stack.externalSnapshots()) {
                if (r.export().equals(exportId) && r.name().equals(name)) {
                    throw new BlockIOException(Errno.EEXIST, "export '" + exportId + "' has an external snapshot '"
                            + name + "' already");
                }
            }
            List<BlockNode> bases = ExternalSnapshots.snapshotPoints(backend.rootNode());
            for (BlockNode base : bases) {
                var job = stack.jobs().runningOn(base);
                if (job != null) {
                    throw new BlockIOException(Errno.EBUSY, "node '" + base.nodeName() + "' is in use by job '"
                            + job.id() + "' (" + job.type() + ")");
                }
            }
            BlockDriver format = ExternalSnapshots.overlayFormat(graph, command.format());
            List<ExternalSnapshots.Plan> plans = ExternalSnapshots.plan(graph, bases, name, command.overlayDir(),
                    format);
            String where = "config '" + source + "'";
            byte[] original = Files.readAllBytes(source);
            // a dry run first: refuse what the config cannot record before creating any file
            List<Map<String, Object>> placeholders = new ArrayList<>();
            for (ExternalSnapshots.Plan p : plans) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("driver", format.name());
                m.put("node-name", p.request().nodeName());
                placeholders.add(m);
            }
            record(ConfigEdit.of(original, where), exportId, name, plans, placeholders);

            timer.done("checks");
            // What does not change the guest's disk runs while it goes on writing, and at the same
            // time: the bases' first flush (under load the longest step: what the guest wrote since
            // its last flush goes to disk) beside making and opening the overlays and writing the
            // new config to a temp file, whose syncs would wait for the same writeback anyway. The
            // drain holds the guest's I/O only for a last flush of what arrived since, the
            // config's rename, and the swap. The flush goes through the whole disk: nodes above
            // the bases (dedup) write what they cache into them.
            ConfigEdit edit = ConfigEdit.of(original, where);
            AtOnce.Running firstFlush = AtOnce.start("snapshot-flush", backend::flushForCommand);
            ExternalSnapshots.Prepared prepared = null;
            ConfigRewrite.Staged staged = null;
            try {
                prepared = ExternalSnapshots.prepare(graph, plans, format);
                timer.done("create and open overlays");
                // the config about to name the overlays must never outlive their files' entries:
                // their folders are synced before the rename, while the new config is written
                List<Path> folders = prepared.overlays().stream().map(o -> o.path().getParent()).distinct().toList();
                AtOnce.Running folderSync = AtOnce.start("snapshot-sync-folders", () -> {
                    for (Path folder : folders) {
                        ConfigRewrite.syncFolder(folder);
                    }
                });
                try {
                    record(edit, exportId, name, plans,
                            prepared.overlays().stream().map(ExternalSnapshots.Overlay::options).toList());
                    staged = ConfigRewrite.stage(source, edit.toBytes());
                } finally {
                    folderSync.awaitEnd();
                }
                folderSync.join();
                timer.done("write new config, sync overlay folders");
                firstFlush.join();
                timer.done("first flush, what is left of it");
                long paused = System.nanoTime();
                try (BlockGraph.Drained ignored = graph.drain(bases)) {
                    timer.done("drain");
                    backend.flushForCommand();
                    timer.done("flush disk again");
                    ConfigRewrite.Staged renaming = staged;
                    staged = null;
                    renaming.commit();
                    timer.done("rename config");
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
                    timer.done("swap");
                }
                timer.total("guest I/O held " + PhaseTimer.millis(System.nanoTime() - paused) + " ms");
                stack.externalSnapshots(edit.snapshots());
                for (ExternalSnapshots.Overlay o : prepared.overlays()) {
                    LOG.info(() -> "export '" + exportId + "': external snapshot '" + name + "': '"
                            + o.overlay().nodeName() + "' (" + o.path() + ") over '" + o.base().nodeName() + "'");
                }
                return prepared.overlays();
            } catch (IOException | RuntimeException | Error e) {
                firstFlush.awaitEnd(e);
                if (staged != null) {
                    staged.discard();
                }
                if (prepared != null) {
                    prepared.abort();
                }
                throw e;
            }
        }
    }

    /**
     * Records the overlays in a config: each base marked read-only (it is a backing file now),
     * the overlay's entries after it, every reference to the base (parents' child options,
     * exports) naming the overlay, and the snapshot in {@code external-snapshots}.
     */
    static void record(ConfigEdit edit, String exportId, String name, List<ExternalSnapshots.Plan> plans,
                       List<Map<String, Object>> overlayOptions) {
        List<String> overlays = new ArrayList<>();
        for (int i = 0; i < plans.size(); i++) {
            BlockNode base = plans.get(i).base();
            String overlay = plans.get(i).request().nodeName();
            edit.set(base.nodeName(), "read-only", Boolean.TRUE);
            edit.insertAfter(base.nodeName(), overlayOptions.get(i));
            for (BlockChild p : base.parents()) {
                if (p.parent() != null && !p.parent().nodeName().equals(overlay)) {
                    edit.repoint(p.parent().nodeName(), p.name(), base.nodeName(), overlay);
                }
            }
            edit.repointExports(base.nodeName(), overlay);
            overlays.add(overlay);
        }
        edit.addSnapshot(new ExternalSnapshotRecord(name, exportId, overlays));
    }
}
