package io.diskstack.fuse;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.config.Stack;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlProvider;
import io.diskstack.core.control.GraphView;
import io.diskstack.core.job.JobClock;
import io.diskstack.core.job.JobCommands;
import io.diskstack.core.job.JobControls;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the mount shows, by path:
 * <pre>
 * /DISK                            one flat file per export
 * /.control/graph                  the node graph as a tree
 * /.control/DISK/stats             request counters and every node's own counters
 * /.control/DISK/snapshot-*        internal snapshots: take, list, delete, revert
 * /.control/DISK/snapshot-external write NAME: qcow2 overlays below the filters
 * /.snapshots/DISK/NAME            each internal snapshot's content, read-only
 * /.control/nodes/NODE/…           files of nodes that provide them
 * /.control/FOLDER/…               files of objects that provide them (throttle-groups/tg0/…)
 * /.control/…/last-error           the message of the last failed write in that folder
 * </pre>
 * The {@code .control} and {@code .snapshots} parts are rebuilt on each lookup: they are small,
 * and nodes, objects and snapshots may come and go.
 */
final class MountTree {
    static final String CONTROL = "/.control";
    static final String SNAPSHOTS = "/.snapshots";

    /** A path's kind: a folder, a disk, or a control file. */
    sealed interface Entry permits Folder, Disk, Control, SnapshotFile {}

    record Folder(Set<String> children) implements Entry {}

    record Disk(BlockBackend backend, ExportStats stats) implements Entry {}

    record Control(String folder, ControlFile file) implements Entry {}

    /** {@code .snapshots/DISK/NAME}: a snapshot's content, {@code size} bytes. */
    record SnapshotFile(DiskSnapshots snapshots, String name, long size) implements Entry {}

    private final Stack stack;
    private final Map<String, Disk> disks = new LinkedHashMap<>();
    private final Map<String, DiskSnapshots> snapshots = new LinkedHashMap<>();
    private final OpenDisks openDisks = new OpenDisks();
    private final Map<String, String> lastErrors = new ConcurrentHashMap<>();
    private final Map<String, ExternalSnapshotControl> externalSnapshots = new LinkedHashMap<>();
    private final JobControls jobControls;

    /** Names in {@code .control} that an export's folder must not take. */
    private static final Set<String> RESERVED = Set.of("graph", "last-error", "nodes", "throttle-groups",
            "objects", "snapshots", "jobs");

    /** Refuses export ids that would clash with the mount's own control files. */
    static void checkExportIds(io.diskstack.core.config.StackConfig config) {
        for (var e : config.exports()) {
            if (RESERVED.contains(e.id())) {
                throw new io.diskstack.core.ConfigException("export '" + e.id() + "': 'id' is reserved for the mount's "
                        + "control files (" + String.join(", ", new TreeSet<>(RESERVED)) + ")");
            }
        }
    }

    MountTree(Stack stack) {
        this.stack = stack;
        this.jobControls = new JobControls(stack, new JobCommands(stack, stack.jobs(), JobClock.SYSTEM));
        for (BlockBackend b : stack.backends()) {
            disks.put("/" + b.name(), new Disk(b, new ExportStats()));
            snapshots.put(b.name(), new DiskSnapshots(stack.graph(), b, openDisks));
            externalSnapshots.put(b.name(), new ExternalSnapshotControl(stack, b.name()));
        }
    }

    /** The open handles of each disk, which {@link DiskstackFs} counts. */
    OpenDisks openDisks() {
        return openDisks;
    }

    List<Disk> disks() {
        return new ArrayList<>(disks.values());
    }

    /** The entry at an absolute path, or null. Disk lookups are a single map read. */
    Entry lookup(String path) {
        Disk disk = disks.get(path);
        if (disk != null) {
            return disk;
        }
        if (path.equals("/")) {
            Set<String> names = new TreeSet<>();
            for (String p : disks.keySet()) {
                names.add(p.substring(1));
            }
            names.add(".control");
            names.add(".snapshots");
            return new Folder(names);
        }
        if (path.equals(SNAPSHOTS) || path.startsWith(SNAPSHOTS + "/")) {
            return snapshotEntry(path);
        }
        if (path.equals(CONTROL) || path.startsWith(CONTROL + "/")) {
            return controlTree().get(path);
        }
        return null;
    }

    /** {@code .snapshots}, a disk's folder in it, or one snapshot's file; null if none. */
    private Entry snapshotEntry(String path) {
        if (path.equals(SNAPSHOTS)) {
            return new Folder(new TreeSet<>(snapshots.keySet()));
        }
        String rest = path.substring(SNAPSHOTS.length() + 1);
        int slash = rest.indexOf('/');
        DiskSnapshots disk = snapshots.get(slash < 0 ? rest : rest.substring(0, slash));
        if (disk == null) {
            return null;
        }
        Map<String, Long> files = disk.files();
        if (slash < 0) {
            return new Folder(new TreeSet<>(files.keySet()));
        }
        String name = rest.substring(slash + 1);
        Long size = files.get(name);
        return size == null ? null : new SnapshotFile(disk, name, size);
    }

    void recordError(String folder, String message) {
        lastErrors.put(folder, message);
    }

    private Map<String, Entry> controlTree() {
        Map<String, ControlFile> files = new TreeMap<>();
        BlockGraph graph = stack.graph();
        files.put(CONTROL + "/graph", ControlFile.readOnly(() -> GraphView.render(graph)));
        for (Disk d : disks.values()) {
            String folder = CONTROL + "/" + d.backend().name();
            files.put(folder + "/stats", ControlFile.readOnly(() -> statsOf(d)));
            addAll(files, folder, snapshots.get(d.backend().name()).controlFiles());
        }
        externalSnapshots.forEach((name, file) -> files.put(CONTROL + "/" + name + "/snapshot-external", file));
        addAll(files, CONTROL, jobControls.files());
        for (BlockNode n : graph.nodes()) {
            if (n instanceof ControlProvider p) {
                addAll(files, CONTROL + "/nodes/" + n.nodeName(), p.controlFiles());
            }
        }
        for (Object o : stack.objects().byId().values()) {
            if (o instanceof ControlProvider p && p.controlFolder() != null) {
                addAll(files, CONTROL + "/" + p.controlFolder(), p.controlFiles());
            }
        }
        Map<String, Entry> tree = new TreeMap<>();
        Map<String, Set<String>> folders = new TreeMap<>();
        folders.put(CONTROL, new TreeSet<>());
        for (Map.Entry<String, ControlFile> f : files.entrySet()) {
            String path = f.getKey();
            String folder = parentOf(path);
            tree.put(path, new Control(folder, f.getValue()));
            registerFolders(folders, path);
        }
        for (String folder : new ArrayList<>(folders.keySet())) {
            String errorPath = folder + "/last-error";
            tree.put(errorPath, new Control(folder,
                    ControlFile.readOnly(() -> lastErrors.getOrDefault(folder, "") + (lastErrors.containsKey(folder) ? "\n" : ""))));
            folders.get(folder).add("last-error");
        }
        for (Map.Entry<String, Set<String>> f : folders.entrySet()) {
            tree.put(f.getKey(), new Folder(f.getValue()));
        }
        return tree;
    }

    private static void addAll(Map<String, ControlFile> files, String folder, Map<String, ControlFile> provided) {
        for (Map.Entry<String, ControlFile> e : provided.entrySet()) {
            files.put(folder + "/" + e.getKey(), e.getValue());
        }
    }

    private static void registerFolders(Map<String, Set<String>> folders, String path) {
        String child = path;
        String parent = parentOf(child);
        while (child.startsWith(CONTROL + "/")) {
            folders.computeIfAbsent(parent, k -> new TreeSet<>()).add(child.substring(parent.length() + 1));
            child = parent;
            parent = parentOf(child);
        }
    }

    private static String parentOf(String path) {
        int slash = path.lastIndexOf('/');
        return slash <= 0 ? "/" : path.substring(0, slash);
    }

    private String statsOf(Disk d) {
        StringBuilder out = new StringBuilder(d.stats().render());
        Map<BlockNode, Boolean> seen = new IdentityHashMap<>();
        appendNodeStats(out, d.backend().rootNode(), seen);
        return out.toString();
    }

    private static void appendNodeStats(StringBuilder out, BlockNode node, Map<BlockNode, Boolean> seen) {
        if (seen.put(node, Boolean.TRUE) != null) {
            return;
        }
        for (Map.Entry<String, Long> s : node.stats().entrySet()) {
            out.append(node.nodeName()).append('.').append(s.getKey()).append(' ').append(s.getValue()).append('\n');
        }
        for (var c : node.children()) {
            appendNodeStats(out, c.node(), seen);
        }
    }
}
