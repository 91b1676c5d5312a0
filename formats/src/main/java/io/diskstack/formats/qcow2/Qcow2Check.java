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
 * Consistency check of a qcow2 image, like {@code qemu-img check}: counts every reference to
 * every host cluster (header, tables, each L1 table's L2 tables and data clusters, snapshots,
 * bitmaps), compares with the stored refcounts, then checks the COPIED flags of the active
 * tables against the refcounts as they are after any repair (as QEMU does). A stored refcount
 * below the references is corruption; above is a leak.
 *
 * <p>Repairs, as {@code qemu-img check -r}: {@link Repair#LEAKS} lowers leaked refcounts, and
 * fixes the COPIED flags if nothing else is wrong; {@link Repair#ALL} also raises refcounts that
 * are too low (where the refcount block exists) and always fixes the COPIED flags. After a
 * repair the image is checked again and the report gives the state after the repair.
 */
public final class Qcow2Check {
    /** At most this many problems are listed one by one; the counts are always complete. */
    private static final int MAX_LISTED = 100;
    private static final long MAX_CLUSTERS = 1L << 25;

    /** What to repair, as {@code qemu-img check -r leaks|all}. */
    public enum Repair { NONE, LEAKS, ALL }

    /**
     * What a check found.
     *
     * @param corruptions       errors left (after any repair): refcounts too low, bad offsets,
     *                          wrong COPIED flags
     * @param leaks             clusters left whose refcount is higher than their references
     * @param corruptionsFixed  errors repaired by this run
     * @param leaksFixed        leaks repaired by this run
     * @param problems          a line per problem as found (the first hundred), repaired or not,
     *                          then any new one the check after a repair found
     * @param allocatedClusters clusters in use
     * @param guestClusters     clusters of the virtual disk
     */
    public record Report(String image, long corruptions, long leaks, long corruptionsFixed, long leaksFixed,
                         List<String> problems, long allocatedClusters, long guestClusters) {
        public boolean isClean() {
            return corruptions == 0 && leaks == 0;
        }
    }

    private final Qcow2Node node;
    private final Layout layout;
    private final long fileClusters;
    private final int[] expected;
    private final List<String> problems;
    private long corruptions;
    private long leaks;
    private long corruptionsFixed;
    private long leaksFixed;

    private Qcow2Check(Qcow2Node node, List<String> problems) throws IOException {
        this.node = node;
        this.problems = problems;
        this.layout = node.layout;
        long fileSize = node.file.size();
        this.fileClusters = layout.clustersFor(fileSize);
        if (fileClusters > MAX_CLUSTERS) {
            throw new BlockIOException(Errno.EFBIG, node.describe + ": too many clusters to check ("
                    + fileClusters + ")");
        }
        this.expected = new int[(int) fileClusters];
    }

    /** Checks an image file, repairing leaks if asked ({@code qemu-img check [-r leaks]}). */
    public static Report check(Path image, boolean repairLeaks) throws IOException {
        return check(image, repairLeaks ? Repair.LEAKS : Repair.NONE);
    }

    /**
     * Checks an image file, repairing what {@code repair} says. The image is opened on its own
     * (read-only unless repairing, and without its backing file).
     *
     * @throws ConfigException if the image cannot be opened at all (the message says why)
     */
    public static Report check(Path image, Repair repair) throws IOException {
        Path abs = image.toAbsolutePath().normalize();
        boolean writable = repair != Repair.NONE;
        try (BlockGraph graph = new BlockGraph(DriverRegistry.load(), ObjectRegistry.load(), abs.getParent())) {
            Map<String, Object> opts = new LinkedHashMap<>();
            opts.put("driver", "qcow2");
            opts.put("node-name", "check");
            opts.put("read-only", !writable);
            opts.put("backing", "");
            opts.put("file.driver", "file");
            opts.put("file.filename", abs.toString());
            BlockNode n;
            Qcow2Driver.OPENING_FOR_REPAIR.set(writable);
            try {
                n = graph.open(opts);
            } finally {
                Qcow2Driver.OPENING_FOR_REPAIR.remove();
            }
            return run((Qcow2Node) n, repair);
        }
    }

    static Report run(Qcow2Node node, boolean repairLeaks) throws IOException {
        return run(node, repairLeaks ? Repair.LEAKS : Repair.NONE);
    }

    static Report run(Qcow2Node node, Repair repair) throws IOException {
        node.gate.writeLock().lock();
        node.lock.lock();
        try {
            boolean fix = repair != Repair.NONE && !node.isReadOnly();
            if (!node.isReadOnly()) {
                node.refcounts.releaseReserved();
                node.flushMetadata();
            }
            if (fix) {
                // as opening it for writing would (qemu-img check -r leaks does the same)
                node.repairIfDirty();
            }
            List<String> problems = new ArrayList<>();
            Qcow2Check c = new Qcow2Check(node, problems);
            c.countReferences();
            c.compare(fix, fix && repair == Repair.ALL);
            // QEMU's rule: with -r leaks the flags are fixed only when the refcounts are now right
            boolean fixCopied = fix && (repair == Repair.ALL || c.corruptions == 0 && c.leaks == 0);
            c.checkCopied(fixCopied);
            long corruptionsFixed = c.corruptionsFixed;
            long leaksFixed = c.leaksFixed;
            Qcow2Check result;
            if (corruptionsFixed + leaksFixed > 0) {
                node.file.flush();
                c = null; // its counts array can go before the second one is made
                result = recheck(node, problems);
            } else {
                result = c;
            }
            if (fix && result.corruptions == 0 && node.header.isCorrupt()) {
                // as qemu-img check: a repair that leaves no error clears the corrupt mark
                node.header.incompatible &= ~Qcow2Header.INCOMPAT_CORRUPT;
                node.writeIncompatible();
            }
            long used = 0;
            for (int v : result.expected) {
                if (v > 0) {
                    used++;
                }
            }
            return new Report(node.describe, result.corruptions, result.leaks, corruptionsFixed, leaksFixed,
                    List.copyOf(problems), used, node.layout.clustersFor(node.size));
        } finally {
            node.lock.unlock();
            node.gate.writeLock().unlock();
        }
    }

    /** Checks again after a repair; adds the problems not listed yet. */
    private static Qcow2Check recheck(Qcow2Node node, List<String> problems) throws IOException {
        Qcow2Check result = new Qcow2Check(node, new ArrayList<>());
        result.countReferences();
        result.compare(false, false);
        result.checkCopied(false);
        for (String line : result.problems) {
            if (problems.size() < MAX_LISTED && !problems.contains(line)) {
                problems.add(line);
            }
        }
        return result;
    }

    /**
     * Rebuilds a dirty lazy-refcounts image's metadata, in QEMU's order: every refcount set to the
     * number of references, then the active tables' COPIED flags set from the new refcounts.
     * Under the lock.
     */
    static void repairRefcounts(Qcow2Node node) throws IOException {
        Qcow2Check c = new Qcow2Check(node, new ArrayList<>());
        c.countReferences();
        String missing = c.referencedWithoutBlock();
        if (c.corruptions > 0 || missing != null) {
            throw new BlockIOException(Errno.EIO, node.describe + ": the image was not closed cleanly and its "
                    + "metadata is damaged (" + (missing != null ? missing : c.problems.get(0))
                    + "); run qemu-img check -r all");
        }
        c.compare(true, true);
        node.file.flush();
        node.refcounts.writeBlocks();
        node.file.flush();
        node.map.fixCopiedFlags();
        node.file.flush();
    }

    /** The first cluster in use whose refcount block is missing, or null. */
    private String referencedWithoutBlock() {
        int entries = layout.refblockEntries;
        long[] table = node.refcounts.table;
        for (long k = 0; k < fileClusters; k++) {
            long t = k / entries;
            long blockOffset = t < table.length ? table[(int) t] & Layout.OFFSET_MASK : 0;
            if (expected[(int) k] > 0 && (blockOffset == 0 || (blockOffset & (layout.clusterSize - 1)) != 0)) {
                return "cluster at offset " + (k << layout.clusterBits) + " is in use but has no refcount block";
            }
        }
        return null;
    }

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

    private void list(String line) {
        if (problems.size() < MAX_LISTED) {
            problems.add(line);
        }
    }

    private void ref(long offset, long bytes, String what) {
        if (offset < 0 || (offset & (layout.clusterSize - 1)) != 0 && bytes == layout.clusterSize) {
            problem(true, what + " at offset " + offset + " is not cluster-aligned");
            return;
        }
        long first = offset >>> layout.clusterBits;
        long last = (offset + Math.max(bytes, 1) - 1) >>> layout.clusterBits;
        for (long c = first; c <= last; c++) {
            if (c >= fileClusters) {
                problem(true, what + " at offset " + (c << layout.clusterBits) + " is past the end of the file");
                return;
            }
            expected[(int) c]++;
        }
    }

    private void countReferences() throws IOException {
        Qcow2Header h = node.header;
        ref(0, layout.clusterSize, "header");
        ref(node.refcounts.tableOffset, node.refcounts.tableClusters << layout.clusterBits, "refcount table");
        long[] table = node.refcounts.table;
        for (int i = 0; i < table.length; i++) {
            long off = table[i] & Layout.OFFSET_MASK;
            if (off != 0) {
                ref(off, layout.clusterSize, "refcount block " + i);
            }
        }
        if (node.map.l1.length > 0) {
            ref(node.map.l1Offset, node.map.l1.length * 8L, "L1 table");
        }
        walk(node.map.l1, "active");
        SnapshotTable.Parsed snaps = Qcow2Driver.readSnapshots(node.file, h, layout);
        if (h.nbSnapshots > 0) {
            ref(h.snapshotsOffset, snaps.bytes(), "snapshot table");
        }
        for (SnapshotTable.Entry e : snaps.entries()) {
            if (e.l1Size > 0) {
                ref(e.l1Offset, e.l1Size * 8, "snapshot '" + e.name + "' L1 table");
            }
            walk(ClusterMap.readL1(node.file, e.l1Offset, e.l1Size), "snapshot '" + e.name + "'");
        }
        countBitmaps();
    }

    private void walk(long[] l1, String which) throws IOException {
        for (int i = 0; i < l1.length; i++) {
            long off = l1[i] & Layout.OFFSET_MASK;
            if (off == 0) {
                continue;
            }
            if (!validTable(off)) {
                problem(true, which + " L1 entry " + i + " points to invalid offset " + off);
                continue;
            }
            ref(off, layout.clusterSize, which + " L2 table");
            TableCache.Table t = node.l2cache.get(off);
            for (int k = 0; k < layout.l2Entries; k++) {
                long e = node.map.entry(t, k);
                long guest = ((long) i * layout.l2Entries + k) << layout.clusterBits;
                if ((e & Layout.COMPRESSED) != 0) {
                    long coff = layout.compressedOffset(e);
                    ref(coff, layout.compressedLength(e), which + " compressed cluster for guest offset " + guest);
                    continue;
                }
                long host = e & Layout.OFFSET_MASK;
                if (host == 0) {
                    continue;
                }
                if ((host & (layout.clusterSize - 1)) != 0) {
                    problem(true, which + " L2 entry for guest offset " + guest + " is not cluster-aligned");
                    continue;
                }
                ref(host, layout.clusterSize, which + " data cluster for guest offset " + guest);
            }
        }
    }

    private boolean validTable(long off) {
        return (off & (layout.clusterSize - 1)) == 0 && (off >>> layout.clusterBits) < fileClusters;
    }

    /**
     * Compares the COPIED flags of the active L1 and L2 tables with the stored refcounts
     * (refcount 1 exactly when COPIED is set; never on an unallocated entry), and fixes them all
     * at once if asked.
     */
    private void checkCopied(boolean fix) throws IOException {
        long[] l1 = node.map.l1;
        long found = 0;
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < l1.length; i++) {
            long off = l1[i] & Layout.OFFSET_MASK;
            if (off == 0 || !validTable(off)) {
                continue;
            }
            long rc = node.refcounts.get(off >>> layout.clusterBits);
            if (((l1[i] & Layout.COPIED) != 0) != (rc == 1)) {
                found++;
                lines.add("OFLAG_COPIED L2 table at offset " + off + ": refcount " + rc);
            }
            TableCache.Table t = node.l2cache.get(off);
            for (int k = 0; k < layout.l2Entries; k++) {
                long e = node.map.entry(t, k);
                if ((e & Layout.COMPRESSED) != 0) {
                    continue;
                }
                long host = e & Layout.OFFSET_MASK;
                long guest = ((long) i * layout.l2Entries + k) << layout.clusterBits;
                if (host == 0) {
                    if ((e & Layout.COPIED) != 0) {
                        found++;
                        lines.add("OFLAG_COPIED set on unallocated guest offset " + guest);
                    }
                    continue;
                }
                if (!validTable(host)) {
                    continue;
                }
                long drc = node.refcounts.get(host >>> layout.clusterBits);
                if (((e & Layout.COPIED) != 0) != (drc == 1)) {
                    found++;
                    lines.add("OFLAG_COPIED data cluster at offset " + host + ": refcount " + drc);
                }
            }
        }
        if (found == 0) {
            return;
        }
        if (fix) {
            node.map.fixCopiedFlags();
            node.file.flush();
        }
        for (String line : lines) {
            if (fix) {
                repaired(true, line);
            } else {
                problem(true, line);
            }
        }
    }

    /** QEMU's limits: 65535 bitmaps, a 64 MiB directory; tables are read in chunks up to a total. */
    private static final long MAX_BITMAPS = 65535;
    private static final long MAX_BITMAP_DIRECTORY = 64L << 20;
    private static final long MAX_BITMAP_TABLES = 256L << 20;
    private static final int BITMAP_CHUNK = 1 << 20;

    /**
     * References from the persistent bitmaps: the directory, each bitmap table and the data
     * clusters it lists. Every size and offset is checked in long arithmetic against the file
     * before it is used: a damaged extension is a reported error, never an exception.
     */
    private void countBitmaps() throws IOException {
        long fileSize = node.file.size();
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

    /** Compares stored refcounts with the references; fixes leaks if {@code fix}, low counts if {@code raise}. */
    private long compare(boolean fix, boolean raise) throws IOException {
        long fixed = 0;
        int entries = layout.refblockEntries;
        long[] table = node.refcounts.table.clone();
        long blocks = Math.max(table.length, (fileClusters + entries - 1) / entries);
        for (long t = 0; t < blocks; t++) {
            long first = t * entries;
            long blockOffset = t < table.length ? table[(int) t] & Layout.OFFSET_MASK : 0;
            if (blockOffset == 0 || (blockOffset & (layout.clusterSize - 1)) != 0) {
                if (blockOffset != 0) {
                    problem(true, "refcount table entry " + t + " points to unaligned offset " + blockOffset);
                }
                for (long k = first; k < Math.min(fileClusters, first + entries); k++) {
                    if (expected[(int) k] > 0) {
                        problem(true, "cluster at offset " + (k << layout.clusterBits) + ": refcount 0, "
                                + expected[(int) k] + " references (no refcount block)");
                    }
                }
                continue;
            }
            ByteBuffer data = node.refcache.get(blockOffset).data;
            for (int i = 0; i < entries; i++) {
                long c = first + i;
                long stored = node.refcounts.read(data, i);
                long exp = c < fileClusters ? expected[(int) c] : 0;
                if (stored == exp) {
                    continue;
                }
                long off = c << layout.clusterBits;
                String what = "cluster at offset " + off + ": refcount " + stored + ", " + exp + " references";
                boolean low = stored < exp;
                if (low ? raise : fix) {
                    node.refcounts.adjust(off, exp - stored);
                    node.refcounts.writeBackIfFull();
                    fixed++;
                    repaired(low, what);
                } else {
                    problem(low, what);
                }
                data = node.refcache.get(blockOffset).data;
            }
        }
        if (fixed > 0) {
            node.file.flush();
            node.refcounts.writeBlocks();
            node.file.flush();
        }
        return fixed;
    }
}
