package io.diskstack.core.edit;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.ExportGuard;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.config.ConfigEdit;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.ConfigRewrite;
import io.diskstack.core.config.ExportConfig;
import io.diskstack.core.config.ExportFrontEnd;
import io.diskstack.core.config.ExternalSnapshotRecord;
import io.diskstack.core.config.Stack;
import io.diskstack.core.job.BlockJob;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.OptionTree;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * Live graph edits, QEMU's QMP commands as one line each ({@code key=value,…} or a JSON object):
 * object-add/-del, blockdev-add/-del/-replace/-reopen, block-export-add/-del, and a growable
 * node's add-child/del-child (QEMU's x-blockdev-change). Each is validated like the config
 * (errors name the node and key), runs drained and all or nothing, and is recorded in the config
 * atomically, so that a remount builds the same graph. A refused edit changes neither the graph
 * nor the config.
 */
public final class GraphEdits {
    private static final Logger LOG = Logger.getLogger(GraphEdits.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The options every node's reopen can change; a driver adds its own ({@code reopenableOptions}). */
    private static final Set<String> REOPENABLE = Set.of("read-only", "detect-zeroes", "discard", "cache.no-flush");

    private final Stack stack;
    private final ExportGuard guard;

    public GraphEdits(Stack stack, ExportGuard guard) {
        this.stack = stack;
        this.guard = guard;
    }

    private BlockGraph graph() {
        return stack.graph();
    }

    // ---- objects ----

    /** {@code object-add qom-type=TYPE,id=ID,…}: a secret or a throttle group at run time. */
    public void objectAdd(String text) throws IOException {
        synchronized (stack) {
            Map<String, Object> flat = parse("object-add", text, "qom-type");
            Object id = flat.get("id");
            graphFirst("object-add", e -> e.addObject(nested(text, flat)),
                    () -> stack.objects().create(flat, graph().baseDir()),
                    () -> stack.objects().remove(String.valueOf(id)));
            LOG.info(() -> "object '" + id + "'");
        }
    }

    /** {@code object-del id=ID}: refused (EBUSY) while a node or a front end (the NBD server) uses the object. */
    public void objectDel(String text) throws IOException {
        synchronized (stack) {
            NodeOptions o = options("object-del", text, "id");
            String id = o.requireString("id");
            o.assertAllConsumed();
            if (!stack.objects().byId().containsKey(id)) {
                throw new BlockIOException(Errno.ENOENT, "no object '" + id + "'");
            }
            List<String> holders = stack.objects().holders(id);
            if (!holders.isEmpty()) {
                throw new BlockIOException(Errno.EBUSY, "object '" + id + "' is in use by "
                        + String.join(", ", holders));
            }
            List<String> users = graph().objectUsers(id);
            if (!users.isEmpty()) {
                throw new BlockIOException(Errno.EBUSY, "object '" + id + "' is in use by node '"
                        + String.join("', '", users) + "'");
            }
            configFirst("object-del", e -> e.removeObject(id), () -> stack.objects().remove(id));
            LOG.info(() -> "object '" + id + "'");
        }
    }

    // ---- nodes ----

    /** {@code blockdev-add driver=…,node-name=…,…}: a new node (and nested children) with no parent yet. */
    public void blockdevAdd(String text) throws IOException {
        synchronized (stack) {
            Map<String, Object> flat = parse("blockdev-add", text, null);
            if (!(flat.get("node-name") instanceof String name)) {
                throw new ConfigException("'node-name' is required");
            }
            if (graph().node(name) != null) {
                throw new ConfigException("blockdev '" + name + "': duplicate node-name", Errno.EEXIST);
            }
            Map<String, Object> nested = nested(text, flat);
            BlockNode[] opened = new BlockNode[1];
            graphFirst("blockdev-add", e -> e.append(nested), () -> opened[0] = graph().open(flat),
                    () -> graph().removeWithOrphans(opened[0]));
            BlockNode node = opened[0];
            LOG.info(() -> "node '" + name + "' (" + node.driver().name() + ")");
        }
    }

    /** {@code blockdev-del node-name=NODE}: closes a node nobody uses (EBUSY otherwise). */
    public void blockdevDel(String text) throws IOException {
        synchronized (stack) {
            NodeOptions o = options("blockdev-del", text, "node-name");
            BlockNode node = node("blockdev-del", "node-name", o.requireString("node-name"));
            o.assertAllConsumed();
            if (!node.parents().isEmpty()) {
                throw new BlockIOException(Errno.EBUSY, "node '" + node.nodeName() + "' is in use by "
                        + node.parents().get(0).user());
            }
            configFirst("blockdev-del", e -> e.removeNode(node.nodeName()), () -> graph().remove(node));
            LOG.info(() -> "node '" + node.nodeName() + "'");
        }
    }

    /**
     * {@code blockdev-replace parent=NODE,child=CHILD,new-child=NODE} or
     * {@code export=ID,new-child=NODE}: the new node takes the old one's place. A replacement that
     * changes what the disk shows (a node that is not the old one behind other plain filters, or
     * of another size) needs {@code force=on}, unless the parent brings the new child up to date
     * itself (a quorum resyncs it).
     */
    public void blockdevReplace(String text) throws IOException {
        synchronized (stack) {
            NodeOptions o = options("blockdev-replace", text, null);
            String parentName = o.optString("parent", null);
            String childName = o.optString("child", null);
            String exportId = o.optString("export", null);
            BlockNode replacement = node("blockdev-replace", "new-child", o.requireString("new-child"));
            boolean force = o.optBool("force", false);
            o.assertAllConsumed();
            if ((exportId == null) == (parentName == null)) {
                throw new ConfigException("give parent= and child=, or export=");
            }
            if (exportId != null) {
                BlockBackend b = graph().backend(exportId);
                if (b == null) {
                    throw new BlockIOException(Errno.ENOENT, "no export '" + exportId + "'");
                }
                BlockNode old = b.rootNode();
                checkSameContent("export '" + exportId + "'", old, replacement, force, false);
                graphFirst("blockdev-replace", e -> e.setExportNode(exportId, replacement.nodeName()),
                        () -> graph().replaceExportRoot(exportId, replacement),
                        () -> graph().replaceExportRoot(exportId, old));
                LOG.info(() -> "export '" + exportId + "' now shows node '" + replacement.nodeName()
                        + "' instead of '" + old.nodeName() + "'");
                return;
            }
            if (childName == null) {
                throw new ConfigException("'child' is required with 'parent'");
            }
            BlockNode parent = node("blockdev-replace", "parent", parentName);
            BlockChild edge = parent.child(childName);
            if (edge == null) {
                throw new BlockIOException(Errno.ENOENT, "node '" + parentName + "' has no child '"
                        + childName + "'");
            }
            BlockNode old = edge.node();
            if (old == replacement) {
                throw new ConfigException("'" + replacement.nodeName() + "' is " + parentName
                        + "'s '" + childName + "' already");
            }
            checkSameContent("node '" + parentName + "'", old, replacement, force,
                    BlockGraph.resyncsReplacedChild(edge));
            checkNoJob(parent);
            graphFirst("blockdev-replace", e -> e.repoint(parentName, childName, old.nodeName(),
                    replacement.nodeName()), () -> graph().replaceChild(edge, replacement),
                    () -> graph().replaceChild(edge, old));
            LOG.info(() -> "'" + parentName + "' " + childName + " is node '"
                    + replacement.nodeName() + "' instead of '" + old.nodeName() + "'");
        }
    }

    private static void checkSameContent(String where, BlockNode old, BlockNode replacement, boolean force,
                                         boolean parentResyncs) throws BlockIOException {
        if (force || parentResyncs) {
            return;
        }
        if (old.size() != replacement.size()) {
            throw new BlockIOException(Errno.EINVAL, "node '" + replacement.nodeName() + "' is "
                    + replacement.size() + " bytes and '" + old.nodeName() + "' is " + old.size() + ": that would "
                    + "change what " + where + " shows (force=on to do it anyway)");
        }
        if (GraphWalk.skipFilters(old) != GraphWalk.skipFilters(replacement)) {
            throw new BlockIOException(Errno.EINVAL, "node '" + replacement.nodeName() + "' does "
                    + "not show what '" + old.nodeName() + "' shows (only plain filters may come and go): that would "
                    + "change what " + where + " shows (force=on to do it anyway)");
        }
    }

    /**
     * {@code blockdev-reopen node-name=NODE,OPTION=VALUE,…}: new values for options the node can
     * change while it runs: read-only, detect-zeroes, discard, cache.no-flush, and the driver's own
     * (a throttle node's throttle-group, a qcow2 node's cache sizes).
     */
    public void blockdevReopen(String text) throws IOException {
        synchronized (stack) {
            Map<String, Object> flat = parse("blockdev-reopen", text, "node-name");
            if (!(flat.remove("node-name") instanceof String name)) {
                throw new ConfigException("'node-name' is required");
            }
            BlockNode node = node("blockdev-reopen", "node-name", name);
            String owner = "blockdev '" + name + "' (" + node.driver().name() + ")";
            if (flat.isEmpty()) {
                throw new ConfigException(owner + ": give the options to change");
            }
            Set<String> driverOwn = node.driver().reopenableOptions();
            for (String key : flat.keySet()) {
                if (!REOPENABLE.contains(key) && !driverOwn.contains(key)) {
                    throw new ConfigException(owner + ": '" + key + "' cannot change while the node is open");
                }
            }
            if (node.keepsRuntimeState()) {
                throw new ConfigException(owner + ": a reopen would lose what the node knows about its children "
                        + "(which are in sync); change it in the config and remount");
            }
            checkNoJob(node);
            Map<String, Object> changes = new LinkedHashMap<>(flat);
            Map<String, Object> previous = new LinkedHashMap<>();
            for (String key : changes.keySet()) {
                previous.put(key, node.openOptions().get(key));
            }
            BlockNode[] reopened = new BlockNode[1];
            graphFirst("blockdev-reopen", e -> changes.forEach((k, v) -> e.set(name, k, v)),
                    () -> reopened[0] = graph().reopen(node, changes),
                    () -> graph().reopen(reopened[0], previous));
            LOG.info(() -> "node '" + name + "': " + changes.keySet());
        }
    }

    // ---- exports ----

    /**
     * {@code block-export-add [type=fuse|nbd,]id=ID,node-name=NODE[,writable=on]}: a disk appears
     * in the mount, or, with {@code type=nbd} and QEMU's {@code name}, on the mount's NBD server.
     * The export's options are checked as the config's.
     */
    public void exportAdd(String text) throws IOException {
        synchronized (stack) {
            ExportConfig export = ConfigReader.export(parse("block-export-add", text, "id"));
            String id = export.id();
            if (graph().backend(id) != null) {
                throw new ConfigException("export '" + id + "': duplicate id", Errno.EEXIST);
            }
            if (!BlockGraph.isValidName(id) || io.diskstack.core.control.ControlTree.reservedNames(
                    io.diskstack.core.control.ControlTreeProvider.load()).contains(id)) {
                throw new ConfigException("export '" + id + "': 'id' is not a valid export id, or is reserved "
                        + "for the mount's control files");
            }
            ExportFrontEnd frontEnd = null;
            if (!export.isFuse()) {
                frontEnd = stack.frontEnd(export.type());
                if (frontEnd == null) {
                    throw new ConfigException("export '" + id + "': no " + export.type() + " server runs in this "
                            + "mount (start one with the config's \"" + export.type() + "-server\" or --"
                            + export.type() + "-server)");
                }
            }
            node("block-export-add", "node-name", export.nodeName());
            guard.checkExport(export);
            ExportFrontEnd serving = frontEnd;
            List<ExportConfig> before = stack.exports();
            List<ExportConfig> after = new ArrayList<>(before);
            after.add(export);
            graphFirst("block-export-add", e -> e.addExport(export.toConfig()), () -> {
                // the type first: the mount must not show an NBD export as a file for a moment
                stack.exports(after);
                BlockBackend backend;
                try {
                    backend = graph().addBackend(id, export.nodeName(), export.writable());
                } catch (RuntimeException ex) {
                    stack.exports(before);
                    throw ex;
                }
                if (serving != null) {
                    try {
                        serving.addExport(export, backend);
                    } catch (RuntimeException ex) {
                        graph().removeBackend(id);
                        stack.exports(before);
                        throw ex;
                    }
                }
            }, () -> {
                if (serving != null) {
                    serving.removeExport(id);
                }
                graph().removeBackend(id);
                stack.exports(before);
            });
            LOG.info(() -> "export '" + id + "' (" + export.type() + ") of node '" + export.nodeName() + "'");
        }
    }

    /**
     * {@code block-export-del id=ID[,mode=safe|hard]}: the disk leaves the mount; refused while the
     * disk is open unless {@code mode=hard} (QEMU's modes), after which its open files get ENODEV.
     */
    public void exportDel(String text) throws IOException {
        synchronized (stack) {
            NodeOptions o = options("block-export-del", text, "id");
            String id = o.requireString("id");
            String mode = o.optString("mode", "safe");
            if (!mode.equals("safe") && !mode.equals("hard")) {
                throw o.error("mode", "value '" + mode + "' is not one of safe, hard");
            }
            o.assertAllConsumed();
            if (graph().backend(id) == null) {
                throw new BlockIOException(Errno.ENOENT, "no export '" + id + "'");
            }
            if (graph().backends().size() == 1) {
                throw new BlockIOException(Errno.EBUSY, "export '" + id + "' is the mount's last "
                        + "disk (unmount instead)");
            }
            ExportGuard.Action remove = () -> configFirst("block-export-del", e -> {
                e.removeExport(id);
                List<String> gone = new ArrayList<>();
                for (ExternalSnapshotRecord r : e.snapshots()) {
                    if (r.export().equals(id)) {
                        gone.add(r.name());
                    }
                }
                e.removeSnapshots(gone);
            }, () -> {
                ExportConfig gone = stack.exports().stream().filter(x -> x.id().equals(id)).findFirst().orElse(null);
                if (gone != null && !gone.isFuse() && stack.frontEnd(gone.type()) != null) {
                    stack.frontEnd(gone.type()).removeExport(id);
                }
                graph().removeBackend(id);
                stack.exports(stack.exports().stream().filter(x -> !x.id().equals(id)).toList());
            });
            if (mode.equals("hard")) {
                remove.run();
            } else {
                guard.whileClosed(List.of(id), "as it would leave the mount (mode=hard removes it anyway)", remove);
            }
            LOG.info(() -> "export '" + id + "'");
        }
    }

    // ---- a growable node's children (quorum) ----

    /** {@code nodes/NODE/add-child node=CHILD}: a new child at the end of the node's list (QEMU's x-blockdev-change). */
    public void addChild(String parentName, String text) throws IOException {
        synchronized (stack) {
            NodeOptions o = options("add-child", text, "node");
            BlockNode child = node("add-child", "node", o.requireString("node"));
            o.assertAllConsumed();
            BlockNode parent = node("add-child", "node", parentName);
            if (parent.growableChildren() == null) {
                throw new BlockIOException(Errno.EINVAL, "node '" + parentName + "' takes no new children");
            }
            checkNoJob(parent);
            String key = parent.growableChildren().key();
            io.diskstack.core.BlockChild[] added = new io.diskstack.core.BlockChild[1];
            graphFirst("add-child", e -> e.appendToList(parentName, key, child.nodeName()),
                    () -> added[0] = graph().addChild(parent, child), () -> graph().removeChild(parent, added[0]));
            LOG.info(() -> "node '" + child.nodeName() + "' joined '" + parentName + "'");
        }
    }

    /** {@code nodes/NODE/del-child child=children.N}: a child leaves the node's list. */
    public void delChild(String parentName, String text) throws IOException {
        synchronized (stack) {
            NodeOptions o = options("del-child", text, "child");
            String childName = o.requireString("child");
            o.assertAllConsumed();
            BlockNode parent = node("del-child", "node", parentName);
            BlockChild edge = parent.child(childName);
            if (edge == null || parent.growableChildren() == null
                    || !childName.startsWith(parent.growableChildren().key() + ".")) {
                throw new BlockIOException(Errno.ENOENT, "node '" + parentName + "' has no child '"
                        + childName + "' it can give up");
            }
            checkNoJob(parent);
            String key = parent.growableChildren().key();
            int index = Integer.parseInt(childName.substring(key.length() + 1));
            String child = edge.node().nodeName();
            configFirst("del-child", e -> e.removeFromList(parentName, key, child, index),
                    () -> graph().removeChild(parent, edge));
            LOG.info(() -> "'" + childName + "' (" + child + ") left '" + parentName + "'");
        }
    }

    // ---- shared ----

    /** A change of the graph (or the objects) that the config records. */
    private interface Change {
        void run() throws IOException;
    }

    /**
     * An addition or a replacement: checks that the config can record it, makes it (the graph
     * refuses what it must: a cycle, a permission conflict), then records it, and takes it back if
     * the config cannot be written. A crash in between leaves the config as before: a remount
     * opens the graph without the change, which wrote nothing yet.
     */
    private void graphFirst(String command, Consumer<ConfigEdit> edit, Change change, Change undo)
            throws IOException {
        Path source = configFile();
        edit(Files.readAllBytes(source), edit).toBytes();
        change.run();
        ConfigEdit e;
        try {
            // read again: the change may have recorded a node's state (a quorum child out of sync)
            e = edit(Files.readAllBytes(source), edit);
            ConfigRewrite.writeAtomically(source, e.toBytes());
        } catch (IOException | RuntimeException failure) {
            try {
                undo.run();
            } catch (IOException | RuntimeException again) {
                failure.addSuppressed(again);
            }
            throw failure;
        }
        stack.externalSnapshots(e.snapshots());
    }

    /**
     * A removal: records it first, then makes it, and puts the config back if it fails. A crash
     * in between leaves a config without the thing removed, as the user asked.
     */
    private void configFirst(String command, Consumer<ConfigEdit> edit, Change change) throws IOException {
        Path source = configFile();
        byte[] before = Files.readAllBytes(source);
        ConfigEdit e = edit(before, edit);
        ConfigRewrite.writeAtomically(source, e.toBytes());
        try {
            change.run();
        } catch (IOException | RuntimeException failure) {
            try {
                ConfigRewrite.writeAtomically(source, before);
            } catch (IOException restore) {
                failure.addSuppressed(restore);
            }
            throw failure;
        }
        stack.externalSnapshots(e.snapshots());
    }

    private Path configFile() throws BlockIOException {
        Path source = stack.config().source();
        if (source == null) {
            throw new BlockIOException(Errno.EINVAL, "mounted without a config file: nothing to record the change in");
        }
        return source;
    }

    private ConfigEdit edit(byte[] config, Consumer<ConfigEdit> edit) {
        ConfigEdit e = ConfigEdit.of(config, "config '" + stack.config().source() + "'");
        edit.accept(e);
        return e;
    }

    private void checkNoJob(BlockNode node) throws BlockIOException {
        BlockJob job = graph().jobs().runningOn(node);
        if (job != null) {
            throw new BlockIOException(Errno.EBUSY, "node '" + node.nodeName() + "' is in use by job '" + job.id()
                    + "' (" + job.type() + ")");
        }
    }

    private BlockNode node(String command, String key, String name) throws BlockIOException {
        BlockNode n = graph().node(name);
        if (n == null) {
            throw new BlockIOException(Errno.ENOENT, "'" + key + "' names no node '" + name + "'");
        }
        return n;
    }

    private static Map<String, Object> parse(String command, String text, String implied) {
        String t = text.trim();
        if (t.isEmpty()) {
            throw new ConfigException("give its arguments (key=value,… or a JSON object)");
        }
        return ConfigReader.parseCommand("arguments", t, implied);
    }

    private static NodeOptions options(String command, String text, String implied) {
        return new NodeOptions("arguments", parse(command, text, implied));
    }

    /** The options as the config writes them: the JSON the user wrote, or the nested form of key=value. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> nested(String text, Map<String, Object> flat) {
        if (text.trim().startsWith("{")) {
            try {
                return JSON.readValue(text, Map.class);
            } catch (IOException e) {
                throw new ConfigException("not a JSON object: " + e.getMessage().lines().findFirst().orElse(""));
            }
        }
        return OptionTree.unflatten(flat);
    }
}
