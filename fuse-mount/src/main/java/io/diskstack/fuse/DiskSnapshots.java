package io.diskstack.fuse;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.snapshot.InternalSnapshots.Snapshot;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.snapshot.SnapshotTargets.Target;
import io.diskstack.core.snapshot.SnapshotTargets;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.ByteBuffer;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One disk's internal snapshots in the mount: the commands in {@code .control/DISK/}
 * ({@code snapshot-internal}, {@code snapshot-delete}, {@code snapshot-revert}) and the
 * read-only files in {@code .snapshots/DISK/}. The work is {@link SnapshotTargets}'s; this class
 * names files and keeps a revert from changing a disk that someone has open.
 */
final class DiskSnapshots {
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

    private final BlockGraph graph;
    private final BlockBackend backend;
    private final SnapshotTargets targets;
    private final OpenDisks openDisks;

    DiskSnapshots(BlockGraph graph, BlockBackend backend, OpenDisks openDisks) {
        this.graph = graph;
        this.backend = backend;
        this.targets = new SnapshotTargets(graph, backend);
        this.openDisks = openDisks;
    }

    Map<String, ControlFile> controlFiles() {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        files.put("snapshot-internal", command(this::listing, targets::create));
        files.put("snapshot-delete", command(() -> "NAME|ID\n", name -> targets.delete(requireName(name))));
        files.put("snapshot-revert", command(() -> "NAME|ID\n", this::revert));
        return files;
    }

    /** Reverts while no disk that shows a target is open: its content would change under its users. */
    private void revert(String name) throws IOException {
        requireName(name);
        List<String> affected = new ArrayList<>();
        affected.add(backend.name());
        List<Target> all = targets.targets();
        for (BlockBackend other : graph.backends()) {
            if (other != backend && all.stream().anyMatch(t -> BlockGraph.reaches(other.rootNode(), t.node()))) {
                affected.add(other.name());
            }
        }
        openDisks.whileClosed(affected, "as a revert changes its content under it", () -> targets.revert(name));
    }

    private static String requireName(String name) {
        if (name.isEmpty()) {
            throw new ConfigException("give a snapshot's name or id");
        }
        return name;
    }

    private interface Command {
        void run(String text) throws IOException;
    }

    private static ControlFile command(java.util.function.Supplier<String> content, Command command) {
        return new ControlFile() {
            @Override
            public String read() {
                return content.get();
            }

            @Override
            public boolean isWritable() {
                return true;
            }

            @Override
            public void write(String text) throws IOException {
                command.run(text);
            }
        };
    }

    // ---- the listing, as qemu-img snapshot -l prints it ----

    /** Each target's snapshots like {@code qemu-img snapshot -l}; a heading per image if there are several. */
    private String listing() {
        List<Target> all;
        try {
            all = targets.targets();
        } catch (ConfigException e) {
            return e.getMessage() + "\n";
        }
        StringBuilder out = new StringBuilder();
        for (Target t : all) {
            if (all.size() > 1) {
                out.append(out.length() == 0 ? "" : "\n").append("node ").append(t.describe()).append(":\n");
            }
            List<Snapshot> list;
            try {
                list = t.snapshots().listSnapshots();
            } catch (IOException e) {
                out.append("(cannot list: ").append(e.getMessage()).append(")\n");
                continue;
            }
            if (list.isEmpty()) {
                out.append(all.size() > 1 ? "(no snapshots)\n" : "");
                continue;
            }
            out.append("Snapshot list:\n");
            out.append(String.format("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
                    "ICOUNT"));
            for (Snapshot s : list) {
                long secs = s.vmClockNanos() / 1_000_000_000L;
                String clock = String.format("%02d:%02d:%02d.%03d", secs / 3600, (secs / 60) % 60, secs % 60,
                        (s.vmClockNanos() / 1_000_000) % 1000);
                out.append(String.format("%-9s %-16s %8s%20s%13s%11s\n", s.id(), s.name(),
                        sizeToString(s.vmStateSize()), DATE.format(s.date().atZone(ZoneId.systemDefault())), clock,
                        s.icount() == -1 ? "" : Long.toString(s.icount())));
            }
        }
        return out.toString();
    }

    /** QEMU's size_to_str: three significant digits and a binary unit, "0 B", "1.5 MiB". */
    static String sizeToString(long bytes) {
        String[] units = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
        double x = bytes / (1000.0 / 1024.0);
        int exponent = x == 0 ? 0 : Math.getExponent(x) + 1;
        int i = Math.max(0, (exponent - 1) / 10);
        double value = bytes / Math.pow(2, i * 10);
        String digits = new BigDecimal(value).round(new MathContext(3)).stripTrailingZeros().toPlainString();
        return digits + " " + units[i] + "B";
    }

    // ---- the files in .snapshots/DISK/ ----

    /** File name → size of every snapshot, over all targets; empty if the disk has no snapshot node. */
    Map<String, Long> files() {
        Map<String, Long> files = new LinkedHashMap<>();
        List<Target> all;
        try {
            all = targets.targets();
        } catch (ConfigException e) {
            return files;
        }
        for (Target t : all) {
            try {
                for (Snapshot s : t.snapshots().listSnapshots()) {
                    files.putIfAbsent(fileName(s), s.diskSize());
                }
            } catch (IOException e) {
                // a target that cannot list adds nothing
            }
        }
        return files;
    }

    /** A snapshot's file name: its name, or its id if the name cannot be one. */
    private static String fileName(Snapshot s) {
        try {
            SnapshotTargets.checkName(s.name());
            return s.name();
        } catch (ConfigException e) {
            return s.id();
        }
    }

    /** Opens the snapshot shown as {@code .snapshots/DISK/NAME} on every target that has it. */
    SnapshotFile open(String name) throws IOException {
        List<InternalSnapshots.SnapshotReader> readers = new ArrayList<>();
        try {
            for (Target t : targets.targets()) {
                for (Snapshot s : t.snapshots().listSnapshots()) {
                    if (fileName(s).equals(name)) {
                        readers.add(t.snapshots().openSnapshot(s.id()));
                        break;
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            readers.forEach(InternalSnapshots.SnapshotReader::close);
            throw e;
        }
        if (readers.isEmpty()) {
            throw new BlockIOException(Errno.ENOENT, "disk '" + backend.name() + "' has no snapshot '" + name + "'");
        }
        return new SnapshotFile(readers);
    }

    /**
     * One open {@code .snapshots} file. With several targets (quorum) it reads the first that has
     * the snapshot, and the next one if that read fails.
     */
    static final class SnapshotFile implements AutoCloseable {
        private final List<InternalSnapshots.SnapshotReader> readers;

        SnapshotFile(List<InternalSnapshots.SnapshotReader> readers) {
            this.readers = readers;
        }

        long size() {
            return readers.get(0).size();
        }

        /** Fills {@code dst} with the bytes at {@code offset} (in bounds). */
        void read(long offset, ByteBuffer dst) throws IOException {
            IOException first = null;
            for (InternalSnapshots.SnapshotReader r : readers) {
                try {
                    r.read(offset, dst.duplicate());
                    return;
                } catch (IOException e) {
                    if (first == null) {
                        first = e;
                    } else {
                        first.addSuppressed(e);
                    }
                }
            }
            throw first;
        }

        @Override
        public void close() {
            readers.forEach(InternalSnapshots.SnapshotReader::close);
        }
    }
}
