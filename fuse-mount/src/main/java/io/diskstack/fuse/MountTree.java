package io.diskstack.fuse;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.ConfigException;
import io.diskstack.core.config.Stack;
import io.diskstack.core.config.StackConfig;
import io.diskstack.core.control.ControlContext;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlTree;
import io.diskstack.core.control.ControlTreeProvider;
import io.diskstack.core.control.LastErrors;
import io.diskstack.core.snapshot.SnapshotViews;
import io.diskstack.core.snapshot.ViewCache;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * What the mount shows, by path:
 * <pre>
 * /DISK                     one flat file per export
 * /.control/…               the control tree the {@link ControlTreeProvider}s declare, with a
 *                           last-error file in every folder
 * /.snapshots/DISK/NAME     the disk as it was at each snapshot, read-only ({@link SnapshotViews})
 * </pre>
 * Disk lookups are a single map read. The {@code .control} part is built from the providers and
 * kept until the graph, the objects or a provider changes ({@link ControlTree#version}); the
 * {@code .snapshots} part is listed on each lookup.
 */
final class MountTree implements AutoCloseable {
    /** How long an open snapshot view stays open after its last reader, for the next open. */
    private static final long VIEW_LINGER_MILLIS = 2000;

    static final String CONTROL = "/.control";
    static final String SNAPSHOTS = "/.snapshots";

    /** A path's kind: a folder, a disk, or a control file. */
    sealed interface Entry permits Folder, Disk, Control, SnapshotFile {}

    record Folder(Set<String> children) implements Entry {}

    /** A disk file; {@code access} is its owner, group and mode. */
    record Disk(BlockBackend backend, DiskAccess access) implements Entry {}

    /** Who a disk file belongs to and its permission bits, as {@code stat} shows them. */
    record DiskAccess(long uid, long gid, int mode) {
        /** True if the file is meant for someone besides its mounting user. */
        boolean sharedBeyond(long mountingUid) {
            return uid != mountingUid || (mode & 0077) != 0;
        }

        String describe() {
            return UnixUsers.name(uid) + ":" + UnixUsers.groupName(gid) + " " + String.format("%04o", mode);
        }
    }

    /** A control file in {@code folder} (relative to {@code .control}, {@code ""} for the top). */
    record Control(String folder, ControlFile file) implements Entry {}

    /** {@code .snapshots/DISK/NAME}: a snapshot view, {@code size} bytes. */
    record SnapshotFile(SnapshotViews views, String name, long size) implements Entry {}

    /** The control tree built at one version, as entries by absolute path. */
    private record Built(long version, Map<String, Entry> entries) {}

    /** The disks and their snapshot folders as the graph's exports are, rebuilt when they change. */
    private record Disks(long generation, Map<String, Disk> byPath, Map<String, SnapshotViews> snapshots) {}

    private final Stack stack;
    private volatile Disks disks = new Disks(-1, Map.of(), Map.of());
    private final ViewCache views = ViewCache.withLinger(VIEW_LINGER_MILLIS);
    private final OpenDisks openDisks = new OpenDisks();
    private final List<ControlTreeProvider> providers;
    private final ControlContext context;
    private final LastErrors lastErrors = new LastErrors();
    private volatile Built control = new Built(-1, Map.of());
    private int builds;

    /**
     * Each export's file owner, group and mode: the mounting user's and 0600 (0400 read-only)
     * unless the export says otherwise; a read-only export never shows write bits.
     *
     * @throws ConfigException for an owner or group that does not exist
     */
    static Map<String, DiskAccess> access(List<io.diskstack.core.config.ExportConfig> exports, long uid, long gid) {
        Map<String, DiskAccess> out = new HashMap<>();
        for (var e : exports) {
            String where = "export '" + e.id() + "'";
            long owner = e.owner() == null ? uid : UnixUsers.uid(e.owner(), where);
            long group = e.group() == null ? gid : UnixUsers.gid(e.group(), where);
            int mode = e.mode() >= 0 ? e.mode() : 0600;
            out.put(e.id(), new DiskAccess(owner, group, e.writable() ? mode : mode & ~0222));
        }
        return out;
    }

    /** Refuses export ids that would clash with the mount's own control files. */
    static void checkExportIds(StackConfig config) {
        Set<String> reserved = ControlTree.reservedNames(ControlTreeProvider.load());
        for (var e : config.exports()) {
            if (reserved.contains(e.id())) {
                throw new ConfigException("export '" + e.id() + "': 'id' is reserved for the mount's "
                        + "control files (" + String.join(", ", reserved) + ")");
            }
        }
    }

    MountTree(Stack stack) {
        this(stack, ControlTreeProvider.load());
    }

    MountTree(Stack stack, List<ControlTreeProvider> providers) {
        this.providers = List.copyOf(providers);
        this.context = new ControlContext(stack, new io.diskstack.core.ExportGuard() {
            @Override
            public void whileClosed(java.util.Collection<String> ids, String reason, Action action) throws java.io.IOException {
                // the mount's own open files, then every other front end's clients (NBD)
                openDisks.whileClosed(ids, reason, () -> stack.whileFrontEndsClosed(ids, reason, action));
            }

            @Override
            public void checkExport(io.diskstack.core.config.ExportConfig export) {
                access(List.of(export), 0, 0); // an unknown owner or group is refused, naming the export
            }
        });
        this.stack = stack;
    }

    /**
     * The disks now: a volatile read and a counter compare on the hot path; rebuilt (keeping what
     * is unchanged) only after block-export-add/-del or another graph change.
     */
    private Disks disks() {
        Disks d = disks;
        long generation = stack.graph().generation();
        if (d.generation() == generation) {
            return d;
        }
        synchronized (this) {
            d = disks;
            if (d.generation() == generation) {
                return d;
            }
            Disks built = build(d, generation);
            while (stack.graph().generation() != generation) {
                // an export came or went while the list was read: read it again, whole
                generation = stack.graph().generation();
                built = build(d, generation);
            }
            disks = built;
            return built;
        }
    }

    /** The disk files and snapshot folders as the exports are now, reusing what did not change. */
    private Disks build(Disks d, long generation) {
        Map<String, Disk> byPath = new LinkedHashMap<>();
        Map<String, SnapshotViews> snapshots = new LinkedHashMap<>();
        var user = new com.sun.security.auth.module.UnixSystem();
        // the exports first: block-export-add records an export's type before its backend appears
        List<io.diskstack.core.config.ExportConfig> exports = stack.exports();
        Map<String, DiskAccess> access = new HashMap<>();
        Set<String> nbdOnly = new java.util.HashSet<>();
        for (var e : exports) {
            if (!e.isFuse()) {
                nbdOnly.add(e.id());
                continue;
            }
            try {
                access.putAll(access(List.of(e), user.getUid(), user.getGid()));
            } catch (ConfigException gone) {
                // checked at mount and at block-export-add; should the user or group vanish
                // since, this file falls back to the mounting user's, which shares nothing
            }
        }
        for (BlockBackend b : stack.backends()) {
            SnapshotViews views = d.snapshots().get(b.name());
            snapshots.put(b.name(), views != null && views.backend() == b ? views
                    : new SnapshotViews(stack, b, this.views));
            if (nbdOnly.contains(b.name())) {
                continue; // served over NBD only: no file in the mount
            }
            Disk old = d.byPath().get("/" + b.name());
            DiskAccess a = access.getOrDefault(b.name(), new DiskAccess(user.getUid(), user.getGid(),
                    b.isWritable() ? 0600 : 0400));
            byPath.put("/" + b.name(), old != null && old.backend() == b && old.access().equals(a) ? old
                    : new Disk(b, a));
        }
        return new Disks(generation, byPath, snapshots);
    }

    /** The open handles of each disk, which {@link DiskstackFs} counts. */
    OpenDisks openDisks() {
        return openDisks;
    }

    List<Disk> allDisks() {
        return new ArrayList<>(disks().byPath().values());
    }

    /** The entry at an absolute path, or null. Disk lookups are a single map read. */
    Entry lookup(String path) {
        Disks d = disks();
        Disk disk = d.byPath().get(path);
        if (disk != null) {
            return disk;
        }
        if (path.equals("/")) {
            Set<String> names = new TreeSet<>();
            for (String p : d.byPath().keySet()) {
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
        Map<String, SnapshotViews> snapshots = disks().snapshots();
        if (path.equals(SNAPSHOTS)) {
            return new Folder(new TreeSet<>(snapshots.keySet()));
        }
        String rest = path.substring(SNAPSHOTS.length() + 1);
        int slash = rest.indexOf('/');
        SnapshotViews disk = snapshots.get(slash < 0 ? rest : rest.substring(0, slash));
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

    /** Closes the snapshot views still open: the mount is going away. */
    @Override
    public void close() {
        views.close();
    }

    /** Records a failed write to a control file, for its folder's {@code last-error}. */
    void recordError(String folder, String message) {
        lastErrors.record(folder, message);
    }

    /** How often the control tree was built, for tests: lookups must not rebuild it. */
    synchronized int builds() {
        return builds;
    }

    private Map<String, Entry> controlTree() {
        Built now = control;
        long version = ControlTree.version(providers, context);
        if (now.version() == version) {
            return now.entries();
        }
        synchronized (this) {
            version = ControlTree.version(providers, context);
            if (control.version() != version) {
                control = new Built(version, entries(ControlTree.build(providers, context, lastErrors)));
                builds++;
            }
            return control.entries();
        }
    }

    private static Map<String, Entry> entries(ControlTree tree) {
        Map<String, Entry> entries = new HashMap<>();
        tree.folders().forEach((folder, names) -> entries.put(absolute(folder), new Folder(names)));
        tree.files().forEach((path, file) -> entries.put(absolute(path), new Control(ControlTree.parentOf(path), file)));
        return Map.copyOf(entries);
    }

    private static String absolute(String relative) {
        return relative.isEmpty() ? CONTROL : CONTROL + "/" + relative;
    }
}
