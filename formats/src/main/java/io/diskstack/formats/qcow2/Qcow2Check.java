package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.Errno;
import io.diskstack.core.objects.ObjectRegistry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Consistency check of a qcow2 image with {@code qemu-img check}'s rules, so that both call the
 * same images clean, leaking or corrupt: the snapshot table is read as QEMU reads it, every
 * reference to every host cluster is counted (header, L1 and L2 tables, data and compressed
 * clusters, snapshots, bitmaps, the refcount table and blocks) while the entries are checked
 * (reserved bits, alignment, subcluster bitmaps, COPIED on compressed clusters, references past
 * the end of the file), the stored refcounts are compared with the counts, and the active
 * tables' COPIED flags with the refcounts as they are after any repair.
 *
 * <p>Repairs, as {@code qemu-img check -r}: {@link Repair#LEAKS} lowers leaked refcounts, and
 * fixes the COPIED flags if nothing else is wrong; {@link Repair#ALL} also raises refcounts that
 * are too low, rebuilds the refcount structure when it is broken (blocks that are missing,
 * misplaced, shared or outside the image), zeroes misaligned preallocated clusters, completes
 * incomplete snapshot table entries and always fixes the COPIED flags. After a repair the image
 * is checked again and the report gives the state after the repair.
 *
 * <p>{@link #unsafeForWrites} runs the same count before an image's first change: it refuses
 * images whose refcounts would let an allocation hand out a cluster still in use.
 */
public final class Qcow2Check {
    /** At most this many problems are listed one by one; the counts are always complete. */
    private static final int MAX_LISTED = 100;
    private static final long MAX_CLUSTERS = 1L << 25;
    /** QEMU's limit on an L1 table: 32 MiB. */
    private static final long MAX_L1_ENTRIES = Qcow2Header.MAX_L1_BYTES / 8;

    /** What to repair, as {@code qemu-img check -r leaks|all}. */
    public enum Repair { NONE, LEAKS, ALL }

    /**
     * What a check found.
     *
     * @param corruptions       errors left (after any repair): refcounts too low, bad entries,
     *                          wrong COPIED flags
     * @param leaks             clusters left whose refcount is higher than their references
     * @param checkErrors       what kept the check from completing (an unreadable snapshot
     *                          table, a refcount that cannot be read, a repair that would need a
     *                          rebuild with {@code -r leaks}): {@code qemu-img check} exits 1
     * @param corruptionsFixed  errors repaired by this run
     * @param leaksFixed        leaks repaired by this run
     * @param problems          a line per problem as found (the first hundred), repaired or not,
     *                          then any new one the check after a repair found
     * @param allocatedClusters clusters in use
     * @param guestClusters     clusters of the virtual disk
     */
    public record Report(String image, long corruptions, long leaks, long checkErrors, long corruptionsFixed,
                         long leaksFixed, List<String> problems, long allocatedClusters, long guestClusters) {
        public boolean isClean() {
            return corruptions == 0 && leaks == 0 && checkErrors == 0;
        }
    }

    private final Qcow2Node node;
    private final Layout layout;
    private final Repair fix;
    private final List<String> problems;
    private final long fileSize;
    private final long fileClusters;
    /** References per cluster; one more than the file's clusters (a reference may end in the cluster past it). */
    private final int[] expected;
    /** Clusters compared: the file's, or one more if a reference ends past it. */
    private long nbClusters;
    private final long refcountMax;
    private long corruptions;
    private long leaks;
    private long checkErrors;
    private long corruptionsFixed;
    private long leaksFixed;
    /** The refcount structure itself is broken: only a rebuild repairs it. */
    private boolean rebuild;
    /** For {@link #unsafeForWrites}: references that lie past the end of the file. */
    private String pastEnd;
    private SnapshotTable.Lenient snapshots;
    private long incompleteSnapshots;

    private Qcow2Check(Qcow2Node node, Repair fix, List<String> problems) throws IOException {
        this.node = node;
        this.fix = fix;
        this.problems = problems;
        this.layout = node.layout;
        this.fileSize = node.file.size();
        this.fileClusters = layout.clustersFor(fileSize);
        if (fileClusters > MAX_CLUSTERS) {
            throw new BlockIOException(Errno.EFBIG, node.describe + ": too many clusters to check ("
                    + fileClusters + ")");
        }
        this.expected = new int[(int) fileClusters + 1];
        this.nbClusters = fileClusters;
        this.refcountMax = Math.min(layout.refcountMax, Integer.MAX_VALUE);
    }

    /** Checks an image file, repairing leaks if asked ({@code qemu-img check [-r leaks]}). */
    public static Report check(Path image, boolean repairLeaks) throws IOException {
        return check(image, repairLeaks ? Repair.LEAKS : Repair.NONE);
    }

    /**
     * Checks an image file, repairing what {@code repair} says. The image is opened on its own,
     * read-only unless repairing, with its backing chain (as {@code qemu-img check} does: a
     * missing backing file fails the check), and leniently: what QEMU's check mode lets the check
     * report (a damaged snapshot table, no refcount table) does not fail the open.
     *
     * @throws ConfigException if the image cannot be opened at all (the message says why)
     */
    public static Report check(Path image, Repair repair) throws IOException {
        return check(image, repair, io.diskstack.core.Progress.NONE);
    }

    /** The same, reporting how far the first pass is (the L2 tables walked, then the clusters compared). */
    public static Report check(Path image, Repair repair, io.diskstack.core.Progress progress) throws IOException {
        Path abs = image.toAbsolutePath().normalize();
        boolean writable = repair != Repair.NONE;
        try (BlockGraph graph = new BlockGraph(DriverRegistry.load(), ObjectRegistry.load(), abs.getParent())) {
            Map<String, Object> opts = new LinkedHashMap<>();
            opts.put("driver", "qcow2");
            opts.put("node-name", "check");
            opts.put("read-only", !writable);
            opts.put("file.driver", "file");
            opts.put("file.filename", abs.toString());
            BlockNode n;
            Qcow2Driver.OPENING_FOR_CHECK.set(true);
            try {
                n = graph.open(opts);
            } finally {
                Qcow2Driver.OPENING_FOR_CHECK.remove();
            }
            return run((Qcow2Node) n, repair, progress);
        }
    }

    static Report run(Qcow2Node node, boolean repairLeaks) throws IOException {
        return run(node, repairLeaks ? Repair.LEAKS : Repair.NONE, io.diskstack.core.Progress.NONE);
    }

    static Report run(Qcow2Node node, Repair repair, io.diskstack.core.Progress progress) throws IOException {
        node.gate.writeLock().lock();
        node.lock.lock();
        try {
            Repair fix = node.isReadOnly() ? Repair.NONE : repair;
            if (!node.isReadOnly()) {
                node.refcounts.releaseReserved();
                node.flushMetadata();
            }
            List<String> problems = new ArrayList<>();
            Qcow2Check first = new Qcow2Check(node, fix, problems);
            first.progress = progress;
            first.progressTotal = node.map.l1.length + first.nbClusters;
            first.pass();
            progress.update(first.progressTotal, first.progressTotal);
            long corruptionsFixed = first.corruptionsFixed;
            long leaksFixed = first.leaksFixed;
            Qcow2Check result = first;
            if (corruptionsFixed + leaksFixed > 0) {
                node.file.flush();
                first = null; // its counts can go before the second ones are made
                result = new Qcow2Check(node, Repair.NONE, new ArrayList<>());
                result.pass();
                for (String line : result.problems) {
                    if (problems.size() < MAX_LISTED && !problems.contains(line)) {
                        problems.add(line);
                    }
                }
            }
            if (fix != Repair.NONE && result.checkErrors == 0 && result.corruptions == 0) {
                // as qemu-img check: a repair that leaves no error marks the image clean and consistent
                node.header.incompatible &= ~(Qcow2Header.INCOMPAT_CORRUPT | Qcow2Header.INCOMPAT_DIRTY);
                node.writeIncompatible();
            }
            long used = 0;
            for (int v : result.expected) {
                if (v > 0) {
                    used++;
                }
            }
            return new Report(node.describe, result.corruptions, result.leaks, result.checkErrors, corruptionsFixed,
                    leaksFixed, List.copyOf(problems), used, node.layout.clustersFor(node.size));
        } finally {
            node.lock.unlock();
            node.gate.writeLock().unlock();
        }
    }

    /**
     * Repairs an image that was not closed cleanly (its dirty bit is set), before it is written:
     * as QEMU does for such images, every error the check can repair is repaired. Under the lock.
     *
     * @return the leaked clusters freed
     * @throws BlockIOException if the image stays damaged after the repair
     */
    static long repairRefcounts(Qcow2Node node) throws IOException {
        node.refcounts.releaseReserved();
        node.flushMetadata();
        Qcow2Check c = new Qcow2Check(node, Repair.ALL, new ArrayList<>());
        c.pass();
        Qcow2Check after = c;
        if (c.corruptionsFixed + c.leaksFixed > 0) {
            node.file.flush();
            after = new Qcow2Check(node, Repair.NONE, new ArrayList<>());
            after.pass();
        }
        if (after.checkErrors + after.corruptions > 0) {
            throw new BlockIOException(Errno.EIO, node.describe + ": the image was not closed cleanly and its "
                    + "metadata is damaged (" + (after.problems.isEmpty() ? "" : after.problems.get(0)) + "); "
                    + node.repairHint());
        }
        return c.leaksFixed;
    }

    /**
     * Before an image's first change: null if its refcounts account for every reference and
     * every active COPIED flag marks the only reference to its cluster; else the first problem,
     * which would let an allocation hand out a cluster still in use, or an in-place write change
     * what another guest offset or a snapshot reads. Under the lock. Images too large to count
     * are not audited (the overlap checks still apply).
     */
    static String unsafeForWrites(Qcow2Node node) throws IOException {
        if (node.layout.clustersFor(node.file.size()) > MAX_CLUSTERS) {
            return null;
        }
        Qcow2Check c = new Qcow2Check(node, Repair.NONE, new ArrayList<>());
        c.snapshots = new SnapshotTable.Lenient(node.snapshots.entries(), node.snapshots.tableBytes(), null);
        c.countReferences();
        if (c.pastEnd != null) {
            return c.pastEnd;
        }
        if (c.rebuild) {
            for (String p : c.problems) {
                if (p.contains("refcount")) {
                    return "the refcount structure is damaged: " + p.substring(p.indexOf(' ') + 1);
                }
            }
        }
        for (long k = 0; k < c.nbClusters; k++) {
            long stored = c.storedRefcount(k);
            if (stored < 0) {
                return "the refcount of cluster " + k + " cannot be read (its refcount table entry is damaged)";
            }
            if (stored < c.expected[(int) k]) {
                return "cluster " + k + " (host offset " + (k << node.layout.clusterBits) + ") has refcount " + stored
                        + " but " + c.expected[(int) k] + " references: a new allocation could overwrite it";
            }
        }
        return c.sharedButCopied();
    }

    /** An active L1 or L2 entry with COPIED whose cluster has other references, or null. */
    private String sharedButCopied() throws IOException {
        long[] l1 = node.map.l1;
        for (int i = 0; i < l1.length; i++) {
            long l2 = l1[i] & Layout.OFFSET_MASK;
            if (l2 == 0 || (l1[i] & Layout.COPIED) == 0) {
                continue;
            }
            if (references(l2) > 1) {
                return "L2 table at host offset " + l2 + " is marked as used only by the active L1 table (COPIED), but "
                        + references(l2) + " places refer to it";
            }
            ByteBuffer t = readCluster(l2);
            for (int k = 0; k < layout.l2Entries; k++) {
                long e = t.getLong(k * layout.l2EntrySize);
                long host = e & Layout.OFFSET_MASK;
                if ((e & Layout.COPIED) != 0 && (e & Layout.COMPRESSED) == 0 && host != 0 && references(host) > 1) {
                    long guest = ((long) i * layout.l2Entries + k) << layout.clusterBits;
                    return "guest offset " + guest + " is marked as the only user (COPIED) of host cluster "
                            + (host >>> layout.clusterBits) + " (offset " + host + "), which " + references(host)
                            + " places refer to: a write there would change what the others read";
                }
            }
        }
        return null;
    }

    private int references(long offset) {
        long c = offset >>> layout.clusterBits;
        return c < expected.length ? expected[(int) c] : 0;
    }

    // ---- one pass, as qcow2_co_check_locked ----

    private void pass() throws IOException {
        readSnapshots();
        if (checkErrors > 0) {
            return;
        }
        countReferences();
        long corruptionsBefore = corruptions;
        long leaksBefore = leaks;
        compare(false);
        if (rebuild && fix == Repair.ALL) {
            list("Rebuilding refcount structure");
            rebuildRefcounts();
            corruptionsFixed += corruptions - corruptionsBefore + structureProblems;
            leaksFixed += leaks - leaksBefore;
            corruptions = corruptionsBefore - structureProblems;
            leaks = leaksBefore;
        } else if (fix != Repair.NONE) {
            if (rebuild) {
                checkError("the refcount structure needs a rebuild, which only -r all does");
                return;
            }
            if (corruptions > corruptionsBefore || leaks > leaksBefore) {
                corruptions = corruptionsBefore;
                leaks = leaksBefore;
                problems.subList(Math.min(problems.size(), listedBeforeCompare), problems.size()).clear();
                compare(true);
            }
        }
        checkCopied();
        fixSnapshotTable();
    }

    private io.diskstack.core.Progress progress = io.diskstack.core.Progress.NONE;
    private long progressTotal;
    private long progressDone;

    /** One more unit of the first pass done: an active L1 entry walked or a cluster compared. */
    private void advance() {
        if (++progressDone % 1024 == 0 && progressDone <= progressTotal) {
            progress.update(progressDone, progressTotal);
        }
    }

    private int listedBeforeCompare;
    /** Problems of the refcount table and blocks themselves, which a rebuild repairs. */
    private long structureProblems;

    private void problem(boolean corruption, String text) {
        if (corruption) {
            corruptions++;
        } else {
            leaks++;
        }
        list((corruption ? "ERROR " : "Leaked ") + text);
    }

    private void repaired(boolean corruption, String text) {
        if (corruption) {
            corruptionsFixed++;
        } else {
            leaksFixed++;
        }
        list("Repaired " + text);
    }

    private void checkError(String text) {
        checkErrors++;
        list("ERROR " + text);
    }

    private void list(String line) {
        if (problems.size() < MAX_LISTED) {
            problems.add(line);
        }
    }

    /** The snapshot table as {@code qemu-img check} reads it; v3 entries need 16 bytes of extra data. */
    private void readSnapshots() throws IOException {
        Qcow2Header h = node.header;
        snapshots = SnapshotTable.readLenient(node.file, h.snapshotsOffset, h.nbSnapshots, layout.clusterSize, h.size);
        if (snapshots.error() != null) {
            checkError(snapshots.error());
            return;
        }
        if (h.version >= 3) {
            for (int i = 0; i < snapshots.entries().size(); i++) {
                if (snapshots.entries().get(i).extra.length < 16) {
                    incompleteSnapshots++;
                    problem(true, "snapshot table entry " + i + " is incomplete (" + snapshots.entries().get(i).extra.length
                            + " bytes of extra data, 16 needed)");
                }
            }
        }
    }

    /** Counts a reference to bytes [offset, offset+size), as qcow2_inc_refcounts_imrt. */
    private void ref(long offset, long size, String what) {
        if (size <= 0) {
            return;
        }
        // the last cluster may be partly in the file: up to a cluster past the end is fine
        if (offset < 0 || offset + size - fileSize >= layout.clusterSize || offset + size < 0) {
            problem(true, what + " at offset " + Long.toUnsignedString(offset) + " (" + size
                    + " bytes) reaches a cluster or more past the end of the file");
            if (pastEnd == null) {
                pastEnd = what + " at host offset " + Long.toUnsignedString(offset) + " lies past the end of the file";
            }
            return;
        }
        long first = offset >>> layout.clusterBits;
        long last = (offset + size - 1) >>> layout.clusterBits;
        for (long c = first; c <= last; c++) {
            if (expected[(int) c] >= refcountMax) {
                problem(true, "refcount overflow at cluster " + c + " (refcount_bits=" + layout.refcountBits + ")");
                continue;
            }
            expected[(int) c]++;
            nbClusters = Math.max(nbClusters, c + 1);
        }
    }

    private ByteBuffer readCluster(long offset) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(layout.clusterSize);
        node.file.read(offset, b);
        return b.clear();
    }

    private void countReferences() throws IOException {
        Qcow2Header h = node.header;
        ref(0, layout.clusterSize, "header");
        countL1(node.map.l1, node.map.l1Offset, "active", true);
        for (SnapshotTable.Entry e : snapshots.entries()) {
            String which = "snapshot '" + Qcow2Header.printable(e.name) + "'";
            if (e.l1Offset % layout.clusterSize != 0) {
                problem(true, which + " has its L1 table at unaligned offset " + Long.toUnsignedString(e.l1Offset));
                continue;
            }
            if (e.l1Size > MAX_L1_ENTRIES) {
                problem(true, which + " has an L1 table of " + e.l1Size + " entries (at most " + MAX_L1_ENTRIES + ")");
                continue;
            }
            if (e.l1Size > 0) {
                countL1(ClusterMap.readL1(node.file, e.l1Offset, e.l1Size), e.l1Offset, which, false);
            }
        }
        ref(h.snapshotsOffset, h.nbSnapshots == 0 ? 0 : snapshots.bytes(), "snapshot table");
        ref(node.refcounts.tableOffset, node.refcounts.tableClusters << layout.clusterBits, "refcount table");
        countBitmaps();
        countRefcountBlocks();
    }

    private void countL1(long[] l1, long l1Offset, String which, boolean active) throws IOException {
        if (l1.length == 0) {
            return;
        }
        ref(l1Offset, l1.length * 8L, which + " L1 table");
        for (int i = 0; i < l1.length; i++) {
            if (active) {
                advance();
            }
            if (l1[i] == 0) {
                continue;
            }
            if ((l1[i] & Layout.L1_RESERVED) != 0) {
                problem(true, which + " L1 entry " + i + " (0x" + Long.toHexString(l1[i]) + ") has reserved bits set");
            }
            long l2 = l1[i] & Layout.OFFSET_MASK;
            ref(l2, layout.clusterSize, which + " L2 table");
            if (l2 % layout.clusterSize != 0) {
                problem(true, which + " L1 entry " + i + " points to unaligned offset " + l2);
            }
            countL2(l2, i, which);
        }
    }

    /** The entry kinds of qcow2_get_cluster_type. */
    private static final int UNALLOCATED = 0;
    private static final int ZERO_PLAIN = 1;
    private static final int ZERO_ALLOC = 2;
    private static final int NORMAL = 3;
    private static final int COMPRESSED = 4;

    private int kind(long e) {
        if ((e & Layout.COMPRESSED) != 0) {
            return COMPRESSED;
        }
        if ((e & Layout.ZERO) != 0 && !layout.extendedL2) {
            return (e & Layout.OFFSET_MASK) != 0 ? ZERO_ALLOC : ZERO_PLAIN;
        }
        return (e & Layout.OFFSET_MASK) == 0 ? UNALLOCATED : NORMAL;
    }

    private void countL2(long l2, int l1Index, String which) throws IOException {
        ByteBuffer t = readCluster(l2);
        for (int k = 0; k < layout.l2Entries; k++) {
            long e = t.getLong(k * layout.l2EntrySize);
            long bm = layout.extendedL2 ? t.getLong(k * layout.l2EntrySize + 8) : 0;
            long guest = ((long) l1Index * layout.l2Entries + k) << layout.clusterBits;
            String at = which + " L2 entry for guest offset " + guest;
            int kind = kind(e);
            if (kind != COMPRESSED && (e & Layout.L2_RESERVED) != 0) {
                problem(true, at + " (0x" + Long.toHexString(e) + ") has reserved bits set");
            }
            switch (kind) {
                case COMPRESSED -> {
                    if ((e & Layout.COPIED) != 0) {
                        problem(true, at + ": a compressed cluster with the COPIED flag");
                    }
                    if (bm != 0) {
                        problem(true, at + ": a compressed cluster with a subcluster bitmap");
                        continue;
                    }
                    ref(layout.compressedOffset(e), layout.compressedLength(e), which + " compressed cluster");
                }
                case ZERO_ALLOC, NORMAL -> {
                    long host = e & Layout.OFFSET_MASK;
                    if (((bm >>> 32) & bm & 0xffff_ffffL) != 0) {
                        problem(true, at + ": subclusters both allocated and zero (bitmap 0x" + Long.toHexString(bm) + ")");
                    }
                    if (host % layout.clusterSize != 0) {
                        boolean data = layout.extendedL2 ? (bm & 0xffff_ffffL) != 0 : (e & Layout.ZERO) == 0;
                        if (!data && fix == Repair.ALL && l2 % layout.clusterSize == 0) {
                            zeroEntry(t, l2, k, e, bm);
                            repaired(true, at + ": preallocated cluster at unaligned offset " + host + " made a zero cluster");
                            continue;
                        }
                        problem(true, at + " points to unaligned offset " + host);
                    }
                    ref(host, layout.clusterSize, which + " data cluster");
                }
                case UNALLOCATED -> {
                    if ((bm & 0xffff_ffffL) != 0) {
                        problem(true, at + ": an unallocated cluster with allocated subclusters (bitmap 0x"
                                + Long.toHexString(bm) + ")");
                    }
                }
                default -> {
                }
            }
        }
    }

    /** Makes an L2 entry a plain zero cluster (all-zero subclusters), written through. */
    private void zeroEntry(ByteBuffer table, long l2, int k, long e, long bm) throws IOException {
        int at = k * layout.l2EntrySize;
        if (layout.extendedL2) {
            long zero = ((bm | (bm << 32)) & 0xffff_ffff_0000_0000L);
            table.putLong(at, 0).putLong(at + 8, zero);
        } else {
            table.putLong(at, Layout.ZERO);
        }
        node.file.write(l2 + at, table.duplicate().position(at).limit(at + layout.l2EntrySize));
        node.file.flush();
        node.l2cache.drop(l2);
    }

    /** QEMU's limits: 65535 bitmaps, a 64 MiB directory; tables are read in chunks up to a total. */
    private static final long MAX_BITMAPS = 65535;
    private static final long MAX_BITMAP_DIRECTORY = 64L << 20;
    private static final long MAX_BITMAP_TABLES = 256L << 20;
    private static final int BITMAP_CHUNK = 1 << 20;

    /**
     * References from the persistent bitmaps (only while the header says they are valid: the
     * autoclear bit): the directory, each bitmap table and the data clusters it lists. Every size
     * and offset is checked in long arithmetic against the file before it is used: a damaged
     * extension is a reported error, never an exception.
     */
    private void countBitmaps() throws IOException {
        if ((node.header.autoclear & Qcow2Header.AUTOCLEAR_BITMAPS) == 0) {
            return;
        }
        for (Qcow2Header.Extension ext : node.header.extensions) {
            if (ext.type() != Qcow2Header.EXT_BITMAPS) {
                continue;
            }
            if (ext.data().length < 24) {
                problem(true, "bitmaps extension has " + ext.data().length + " bytes (at least 24)");
                continue;
            }
            ByteBuffer x = ByteBuffer.wrap(ext.data());
            long nb = Integer.toUnsignedLong(x.getInt(0));
            long dirSize = x.getLong(8);
            long dirOffset = x.getLong(16);
            if (nb == 0 || nb > MAX_BITMAPS) {
                problem(true, "bitmaps extension claims " + nb + " bitmaps (1 to " + MAX_BITMAPS + ")");
                continue;
            }
            if (dirSize < 24 || dirSize > MAX_BITMAP_DIRECTORY || dirOffset <= 0
                    || (dirOffset & (layout.clusterSize - 1)) != 0 || dirOffset > fileSize - dirSize) {
                problem(true, "bitmap directory of " + Long.toUnsignedString(dirSize) + " bytes at offset "
                        + Long.toUnsignedString(dirOffset) + " does not fit the file");
                continue;
            }
            ref(dirOffset, dirSize, "bitmap directory");
            ByteBuffer dir = ByteBuffer.allocate((int) dirSize);
            node.file.read(dirOffset, dir);
            long pos = 0;
            long tablesBytes = 0;
            for (long i = 0; i < nb; i++) {
                if (pos > dirSize - 24) {
                    problem(true, "bitmap directory entry " + i + " runs past the directory's end");
                    break;
                }
                int p = (int) pos;
                long tOff = dir.getLong(p);
                long tSize = Integer.toUnsignedLong(dir.getInt(p + 8));
                long nameSize = Short.toUnsignedLong(dir.getShort(p + 18));
                long extra = Integer.toUnsignedLong(dir.getInt(p + 20));
                long entryBytes = (24 + extra + nameSize + 7) & ~7L;
                if (entryBytes > dirSize - pos) {
                    problem(true, "bitmap directory entry " + i + " (" + extra + " bytes of extra data, a name of "
                            + nameSize + ") runs past the directory's end");
                    break;
                }
                pos += entryBytes;
                long tBytes = tSize * 8;
                tablesBytes += tBytes;
                if (tSize == 0) {
                    continue;
                }
                if (tOff <= 0 || (tOff & (layout.clusterSize - 1)) != 0 || tOff > fileSize - tBytes) {
                    problem(true, "bitmap " + i + ": table of " + tSize + " entries at offset "
                            + Long.toUnsignedString(tOff) + " does not fit the file");
                    continue;
                }
                if (tablesBytes > MAX_BITMAP_TABLES) {
                    problem(true, "bitmap tables add up to more than " + (MAX_BITMAP_TABLES >> 20) + " MiB");
                    break;
                }
                ref(tOff, tBytes, "bitmap " + i + " table");
                ByteBuffer tb = ByteBuffer.allocate((int) Math.min(tBytes, BITMAP_CHUNK));
                for (long done = 0; done < tBytes; done += tb.capacity()) {
                    tb.clear().limit((int) Math.min(tb.capacity(), tBytes - done));
                    node.file.read(tOff + done, tb);
                    for (int k = 0; k < tb.limit(); k += 8) {
                        long d = tb.getLong(k) & Layout.OFFSET_MASK;
                        if (d != 0) {
                            ref(d, layout.clusterSize, "bitmap " + i + " data");
                        }
                    }
                }
            }
        }
    }

    /** The refcount blocks, counted last, each of which must be referenced exactly once (check_refblocks). */
    private void countRefcountBlocks() {
        long before = corruptions;
        countRefcountBlocksOnce();
        structureProblems = corruptions - before;
    }

    private void countRefcountBlocksOnce() {
        long[] table = node.refcounts.table;
        for (int i = 0; i < table.length; i++) {
            long off = table[i] & Layout.REFTABLE_OFFSET_MASK;
            long cluster = off >>> layout.clusterBits;
            if ((table[i] & Layout.REFTABLE_RESERVED) != 0) {
                problem(true, "refcount table entry " + i + " (0x" + Long.toHexString(table[i]) + ") has reserved bits set");
                rebuild = true;
                continue;
            }
            if (off % layout.clusterSize != 0) {
                problem(true, "refcount block " + i + " is at unaligned offset " + off);
                rebuild = true;
                continue;
            }
            if (cluster >= nbClusters) {
                problem(true, "refcount block " + i + " is outside the image (offset " + Long.toUnsignedString(off) + ")");
                if (fix == Repair.ALL) {
                    rebuild = true;
                }
                continue;
            }
            if (off != 0) {
                ref(off, layout.clusterSize, "refcount block " + i);
                if (expected[(int) cluster] != 1) {
                    problem(true, "refcount block " + i + " at offset " + off + " has " + expected[(int) cluster]
                            + " references (it must be used for nothing else)");
                    rebuild = true;
                }
            }
        }
    }

    /** The stored refcount of a cluster, as qcow2_get_refcount reads it; -1 if its table entry is unusable. */
    private long storedRefcount(long cluster) throws IOException {
        long t = cluster / layout.refblockEntries;
        long[] table = node.refcounts.table;
        if (t >= table.length) {
            return 0;
        }
        long off = table[(int) t] & Layout.REFTABLE_OFFSET_MASK;
        if (off == 0) {
            return 0;
        }
        if (off % layout.clusterSize != 0) {
            return -1;
        }
        return node.refcounts.read(node.refcache.get(off).data, (int) (cluster % layout.refblockEntries));
    }

    /** Compares stored refcounts with the references (compare_refcounts); with {@code fixNow}, repairs what {@link #fix} allows. */
    private void compare(boolean fixNow) throws IOException {
        listedBeforeCompare = problems.size();
        long fixed = 0;
        for (long k = 0; k < nbClusters; k++) {
            advance();
            long stored = storedRefcount(k);
            if (stored < 0) {
                checkError("cannot get the refcount of cluster " + k + ": its refcount table entry points to an "
                        + "unaligned offset");
                continue;
            }
            long exp = expected[(int) k];
            if (stored == exp) {
                continue;
            }
            String what = "cluster " + k + " (offset " + (k << layout.clusterBits) + "): refcount " + stored + ", "
                    + exp + " references";
            boolean low = stored < exp;
            if (stored == 0) {
                rebuild = true;
            } else if (fixNow && (low ? fix == Repair.ALL : fix != Repair.NONE)) {
                node.refcounts.adjust(k << layout.clusterBits, exp - stored);
                node.refcounts.writeBackIfFull();
                fixed++;
                repaired(low, what);
                continue;
            }
            problem(low, what);
        }
        if (fixed > 0) {
            node.file.flush();
            node.refcounts.writeBlocks();
            node.file.flush();
        }
    }

    /**
     * Writes a new refcount table and blocks past everything in use, from the references alone,
     * and points the header at them: the old structure is then unreferenced, and free.
     */
    private void rebuildRefcounts() throws IOException {
        // the references without the old refcount structure
        Qcow2Check counts = new Qcow2Check(node, Repair.NONE, new ArrayList<>());
        counts.snapshots = snapshots;
        counts.countWithoutRefcountStructure();
        int entries = layout.refblockEntries;
        long end = Math.max(counts.nbClusters, fileClusters);
        long blocks = 0;
        long tableClusters = 0;
        boolean[] needed;
        while (true) {
            long total = end + blocks + tableClusters;
            long indexes = (total + entries - 1) / entries;
            needed = new boolean[(int) indexes];
            long n = 0;
            for (long b = 0; b < indexes; b++) {
                boolean used = b * entries < total && b * entries >= end;
                for (long c = b * entries; !used && c < Math.min(end, (b + 1) * entries); c++) {
                    used = c < counts.expected.length && counts.expected[(int) c] > 0;
                }
                needed[(int) b] = used;
                n += used ? 1 : 0;
            }
            long tc = layout.clustersFor(indexes * 8);
            if (n == blocks && tc == tableClusters) {
                break;
            }
            blocks = n;
            tableClusters = tc;
        }
        if (tableClusters << layout.clusterBits > Qcow2Header.MAX_REFTABLE_BYTES) {
            checkError("a rebuilt refcount table would need " + tableClusters + " clusters, more than QEMU allows");
            return;
        }
        long[] table = new long[(int) (tableClusters << layout.clusterBits) / 8];
        long next = end;
        for (int b = 0; b < needed.length; b++) {
            if (needed[b]) {
                table[b] = next++ << layout.clusterBits;
            }
        }
        long tableOffset = next << layout.clusterBits;
        long newEnd = next + tableClusters;
        for (int b = 0; b < needed.length; b++) {
            if (!needed[b]) {
                continue;
            }
            ByteBuffer block = ByteBuffer.allocate(layout.clusterSize);
            for (int i = 0; i < entries; i++) {
                long c = (long) b * entries + i;
                long v = c >= end && c < newEnd ? 1 : c < counts.expected.length && c < end ? counts.expected[(int) c] : 0;
                node.refcounts.write(block, i, Math.min(v, layout.refcountMax));
            }
            node.file.write(table[b], block);
        }
        node.file.write(tableOffset, ClusterMap.toBytes(table));
        node.file.flush();
        node.refcounts.replaceStructure(table, tableOffset, tableClusters, newEnd << layout.clusterBits);
        node.metadataMoved();
    }

    /** Counts the references the refcount structure does not describe itself (for a rebuild). */
    private void countWithoutRefcountStructure() throws IOException {
        Qcow2Header h = node.header;
        ref(0, layout.clusterSize, "header");
        countL1(node.map.l1, node.map.l1Offset, "active", true);
        for (SnapshotTable.Entry e : snapshots.entries()) {
            if (e.l1Offset % layout.clusterSize == 0 && e.l1Size <= MAX_L1_ENTRIES && e.l1Size > 0) {
                countL1(ClusterMap.readL1(node.file, e.l1Offset, e.l1Size), e.l1Offset, "snapshot", false);
            }
        }
        ref(h.snapshotsOffset, h.nbSnapshots == 0 ? 0 : snapshots.bytes(), "snapshot table");
        countBitmaps();
    }

    /**
     * Compares the COPIED flags of the active L1 and L2 tables with the stored refcounts
     * (check_oflag_copied): set exactly when the refcount is 1. Repaired always with
     * {@code -r all}, with {@code -r leaks} only when nothing else is wrong.
     */
    private void checkCopied() throws IOException {
        boolean repair = fix == Repair.ALL
                || fix == Repair.LEAKS && checkErrors == 0 && corruptions == 0 && leaks == 0;
        long[] l1 = node.map.l1;
        for (int i = 0; i < l1.length; i++) {
            long l2 = l1[i] & Layout.OFFSET_MASK;
            if (l2 == 0) {
                continue;
            }
            long rc = storedRefcount(l2 >>> layout.clusterBits);
            if (rc < 0) {
                continue;
            }
            if ((rc == 1) != ((l1[i] & Layout.COPIED) != 0)) {
                String what = "COPIED flag of L1 entry " + i + " (0x" + Long.toHexString(l1[i]) + "): refcount " + rc;
                if (repair) {
                    l1[i] = rc == 1 ? l1[i] | Layout.COPIED : l1[i] & ~Layout.COPIED;
                    node.file.write(node.map.l1Offset + 8L * i, ByteBuffer.allocate(8).putLong(0, l1[i]));
                    node.file.flush();
                    repaired(true, what);
                } else {
                    problem(true, what);
                }
            }
            ByteBuffer t = readCluster(l2);
            boolean dirty = false;
            for (int k = 0; k < layout.l2Entries; k++) {
                long e = t.getLong(k * layout.l2EntrySize);
                int kind = kind(e);
                if (kind != NORMAL && kind != ZERO_ALLOC) {
                    continue;
                }
                long host = e & Layout.OFFSET_MASK;
                long drc = storedRefcount(host >>> layout.clusterBits);
                if (drc < 0 || (drc == 1) == ((e & Layout.COPIED) != 0)) {
                    continue;
                }
                String what = "COPIED flag of the data cluster at offset " + host + " (L2 entry 0x" + Long.toHexString(e)
                        + "): refcount " + drc;
                if (repair && l2 % layout.clusterSize == 0) {
                    t.putLong(k * layout.l2EntrySize, drc == 1 ? e | Layout.COPIED : e & ~Layout.COPIED);
                    dirty = true;
                    repaired(true, what);
                } else {
                    problem(true, what);
                }
            }
            if (dirty) {
                node.file.write(l2, t.clear());
                node.file.flush();
                node.l2cache.drop(l2);
            }
        }
    }

    /** With {@code -r all}: rewrites a snapshot table with incomplete entries (each gets its 16 bytes of extra data). */
    private void fixSnapshotTable() throws IOException {
        if (incompleteSnapshots == 0 || fix != Repair.ALL || checkErrors > 0) {
            return;
        }
        node.snapshots.rewriteTable(snapshots.entries());
        corruptions -= incompleteSnapshots;
        corruptionsFixed += incompleteSnapshots;
        list("Repaired " + incompleteSnapshots + " incomplete snapshot table entries");
    }
}
