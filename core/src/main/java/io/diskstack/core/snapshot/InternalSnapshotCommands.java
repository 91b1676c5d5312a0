package io.diskstack.core.snapshot;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.ExportGuard;
import io.diskstack.core.config.ExternalSnapshotRecord;
import io.diskstack.core.config.Stack;
import io.diskstack.core.snapshot.InternalSnapshots.Snapshot;
import io.diskstack.core.snapshot.SnapshotTargets.Target;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * The internal snapshot commands of one export, for any front end: take, delete and revert
 * ({@link SnapshotTargets} does the work on every image at once), and the listing as
 * {@code qemu-img snapshot -l} prints it. A revert changes the content under the disk's users,
 * so it runs through the front end's {@link ExportGuard} for every export that shows a target.
 */
public final class InternalSnapshotCommands {
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

    private final Stack stack;
    private final BlockBackend backend;
    private final SnapshotTargets targets;
    private final ExportGuard guard;

    public InternalSnapshotCommands(Stack stack, BlockBackend backend, ExportGuard guard) {
        this.stack = stack;
        this.backend = backend;
        this.targets = new SnapshotTargets(stack.graph(), backend);
        this.guard = guard;
    }

    /** Takes snapshot {@code name} in every image below the export; EEXIST if an external snapshot has the name. */
    public void create(String name) throws IOException {
        for (ExternalSnapshotRecord r : stack.externalSnapshots()) {
            if (r.export().equals(backend.name()) && r.name().equals(name)) {
                throw new BlockIOException(Errno.EEXIST, "export '" + backend.name() + "' has an external snapshot '"
                        + name + "' already");
            }
        }
        targets.create(name);
    }

    public void delete(String idOrName) throws IOException {
        targets.delete(requireName(idOrName));
    }

    /** Reverts while no export that shows a target is open: its content would change under its users. */
    public void revert(String idOrName) throws IOException {
        requireName(idOrName);
        List<String> affected = new ArrayList<>();
        affected.add(backend.name());
        List<Target> all = targets.targets();
        for (BlockBackend other : stack.graph().backends()) {
            if (other != backend && all.stream().anyMatch(t -> BlockGraph.reaches(other.rootNode(), t.node()))) {
                affected.add(other.name());
            }
        }
        guard.whileClosed(affected, "as a revert changes its content under it", () -> targets.revert(idOrName));
    }

    private static String requireName(String name) {
        if (name.isEmpty()) {
            throw new ConfigException("give a snapshot's name or id");
        }
        return name;
    }

    /** Each image's snapshots like {@code qemu-img snapshot -l}; a heading per image if there are several. */
    public String listing() {
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
}
