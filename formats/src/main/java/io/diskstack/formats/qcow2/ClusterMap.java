package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The guest → host mapping: the active L1 table (kept in memory, written through entry by
 * entry) and the L2 tables (through the cache). Looks up extents, hands out L2 tables that are
 * safe to change (allocating or copying them first), and keeps the COPIED flags true.
 * Every method runs under the image's metadata lock ({@link #writeDirtyL1} also under its read
 * side and the flush lock, see {@code Qcow2Node#flush}).
 */
final class ClusterMap {
    static final int UNALLOCATED = 0;
    static final int ZERO = 1;
    static final int DATA = 2;
    static final int COMPRESSED = 3;

    /** A run of guest bytes that share a kind; {@code host} is the host offset for DATA, the entry for COMPRESSED. */
    record Extent(int kind, long host, long length) {}

    private final Layout layout;
    private final BlockChild file;
    final TableCache l2;
    private Refcounts refcounts;
    private final String name;
    final boolean zeroFlagAllowed;
    long[] l1;
    long l1Offset;
    /**
     * Active L1 entries changed in memory and not yet written. An entry that points to a new L2
     * table is written only after a flush has made the table's refcount and its content durable
     * (QEMU flushes before writing the L1 entry too): {@link #writeDirtyL1} runs after the flush
     * that precedes every metadata write-back.
     */
    private final java.util.BitSet dirtyL1 = new java.util.BitSet();

    ClusterMap(Layout layout, BlockChild file, TableCache l2, long[] l1, long l1Offset, boolean v3, String name) {
        this.layout = layout;
        this.file = file;
        this.l2 = l2;
        this.l1 = l1;
        this.l1Offset = l1Offset;
        this.zeroFlagAllowed = v3 && !layout.extendedL2;
        this.name = name;
    }

    /** How many L2 tables the image can have: its L1 entries. */
    long l2Tables() {
        return l1.length;
    }

    private Overlaps overlaps;

    void setRefcounts(Refcounts refcounts, Overlaps overlaps) {
        this.refcounts = refcounts;
        this.overlaps = overlaps;
    }

    static long[] readL1(BlockChild file, long offset, long entries) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) (entries * 8));
        if (entries > 0) {
            file.read(offset, b);
        }
        b.flip();
        long[] t = new long[(int) entries];
        for (int i = 0; i < t.length; i++) {
            t[i] = b.getLong();
        }
        return t;
    }

    // ---- entries ----

    long entry(TableCache.Table t, int idx) {
        return t.data.getLong(idx * layout.l2EntrySize);
    }

    long bitmap(TableCache.Table t, int idx) {
        return layout.extendedL2 ? t.data.getLong(idx * 16 + 8) : 0;
    }

    void set(TableCache.Table t, int idx, long entry, long bitmap) {
        t.data.putLong(idx * layout.l2EntrySize, entry);
        if (layout.extendedL2) {
            t.data.putLong(idx * 16 + 8, bitmap);
        }
        l2.markDirty(t);
    }

    /** The L2 table for a guest offset in a given L1 table, or null if there is none. */
    TableCache.Table table(long[] l1Table, long guestOffset) throws IOException {
        int i = layout.l1Index(guestOffset);
        if (i >= l1Table.length) {
            return null;
        }
        long e = l1Table[i];
        long off = e & Layout.OFFSET_MASK;
        if (off == 0) {
            return null;
        }
        if ((e & Layout.L1_RESERVED) != 0 || (off & (layout.clusterSize - 1)) != 0) {
            throw corrupt("L1 entry " + i + " (0x" + Long.toHexString(e) + ") is invalid");
        }
        return l2.get(off);
    }

    /** The extent at {@code off}, at most {@code max} bytes and never past the end of its cluster run. */
    Extent lookup(long[] l1Table, long off, long max) throws IOException {
        long inCluster = layout.offsetInCluster(off);
        TableCache.Table t = table(l1Table, off);
        if (t == null) {
            long spanEnd = (off / layout.l2Span() + 1) * layout.l2Span();
            return new Extent(UNALLOCATED, 0, Math.min(max, spanEnd - off));
        }
        int idx = layout.l2Index(off);
        long e = entry(t, idx);
        long n = Math.min(max, layout.clusterSize - inCluster);
        if ((e & Layout.COMPRESSED) != 0) {
            return new Extent(COMPRESSED, e, n);
        }
        long host = e & Layout.OFFSET_MASK;
        if (host != 0 && (host & (layout.clusterSize - 1)) != 0) {
            throw corrupt("L2 entry for guest offset " + off + " points to unaligned offset " + host);
        }
        if (!layout.extendedL2) {
            if ((e & Layout.ZERO) != 0) {
                return new Extent(ZERO, 0, n);
            }
            return host != 0 ? new Extent(DATA, host + inCluster, n) : new Extent(UNALLOCATED, 0, n);
        }
        long bm = bitmap(t, idx);
        int sc = (int) (inCluster / layout.subclusterSize);
        int kind = subclusterKind(bm, sc, host, off);
        long end = inCluster + n;
        long runEnd = (long) (sc + 1) * layout.subclusterSize;
        while (runEnd < end && subclusterKind(bm, (int) (runEnd / layout.subclusterSize), host, off) == kind) {
            runEnd += layout.subclusterSize;
        }
        long len = Math.min(end, runEnd) - inCluster;
        return new Extent(kind, kind == DATA ? host + inCluster : 0, len);
    }

    int subclusterKind(long bitmap, int sc, long host, long guestOffset) throws BlockIOException {
        boolean alloc = (bitmap & (1L << sc)) != 0;
        boolean zero = (bitmap & (1L << (sc + 32))) != 0;
        if (alloc && zero) {
            throw corrupt("subcluster " + sc + " at guest offset " + guestOffset + " is both allocated and zero");
        }
        if (alloc) {
            if (host == 0) {
                throw corrupt("allocated subcluster at guest offset " + guestOffset + " has no host cluster");
            }
            return DATA;
        }
        return zero ? ZERO : UNALLOCATED;
    }

    // ---- changing the mapping ----

    /**
     * The L2 table for a guest offset in the active L1, made safe to change: allocated if
     * missing, copied if shared with a snapshot.
     */
    TableCache.Table tableForWrite(long guestOffset) throws IOException {
        int i = layout.l1Index(guestOffset);
        long e = l1[i];
        long off = e & Layout.OFFSET_MASK;
        if (off == 0) {
            long n = refcounts.allocate(1);
            TableCache.Table t = l2.create(n);
            file.write(n, t.data.duplicate().clear());
            l1[i] = n | Layout.COPIED;
            dirtyL1.set(i);
            overlaps.add(Overlaps.Kind.ACTIVE_L2, n);
            return t;
        }
        if ((e & Layout.COPIED) != 0) {
            return table(l1, guestOffset);
        }
        TableCache.Table old = table(l1, guestOffset);
        if (refcounts.get(off >>> layout.clusterBits) == 1) {
            l1[i] = off | Layout.COPIED;
            dirtyL1.set(i);
            return old;
        }
        long n = refcounts.allocate(1);
        ByteBuffer copy = ByteBuffer.allocate(layout.clusterSize);
        copy.put(old.data.duplicate().clear()).clear();
        for (int k = 0; k < layout.l2Entries; k++) {
            int at = k * layout.l2EntrySize;
            copy.putLong(at, copy.getLong(at) & ~Layout.COPIED);
        }
        TableCache.Table t = l2.create(n);
        t.data.put(copy).clear();
        file.write(n, t.data.duplicate().clear());
        l1[i] = n | Layout.COPIED;
        dirtyL1.set(i);
        overlaps.add(Overlaps.Kind.ACTIVE_L2, n);
        // the old table's decrease is written only after this entry (Refcounts.Hooks#writeMappingTables)
        refcounts.free(off);
        return t;
    }

    boolean hasDirtyL1() {
        return !dirtyL1.isEmpty();
    }

    /**
     * Writes the changed active L1 entries, a run of neighbours in one write. The caller has
     * flushed what they point to.
     */
    void writeDirtyL1() throws IOException {
        for (int a = dirtyL1.nextSetBit(0); a >= 0; a = dirtyL1.nextSetBit(a)) {
            int b = dirtyL1.nextClearBit(a);
            ByteBuffer buf = ByteBuffer.allocate((b - a) * 8);
            for (int i = a; i < b; i++) {
                buf.putLong(l1[i]);
            }
            file.write(l1Offset + a * 8L, buf.clear());
            dirtyL1.clear(a, b);
            a = b;
        }
    }

    /** Writes the whole active L1 table. */
    void writeL1() throws IOException {
        file.write(l1Offset, toBytes(l1));
        dirtyL1.clear();
    }

    /** Makes another table the active L1 (a revert, after everything dirty was written). */
    void replaceL1(long[] table, long offset) {
        l1 = table;
        l1Offset = offset;
        dirtyL1.clear();
    }

    static ByteBuffer toBytes(long[] table) {
        ByteBuffer b = ByteBuffer.allocate(table.length * 8);
        for (long e : table) {
            b.putLong(e);
        }
        return b.clear();
    }

    /** Drops the host clusters an L2 entry refers to (data, preallocated zero, or compressed). */
    void freeTarget(long entry) throws IOException {
        if ((entry & Layout.COMPRESSED) != 0) {
            long off = layout.compressedOffset(entry);
            long first = off >>> layout.clusterBits;
            long last = (off + layout.compressedLength(entry) - 1) >>> layout.clusterBits;
            for (long c = first; c <= last; c++) {
                refcounts.free(c << layout.clusterBits);
            }
            return;
        }
        long host = entry & Layout.OFFSET_MASK;
        if (host != 0) {
            refcounts.free(host);
        }
    }

    private interface ClusterVisitor {
        void visit(long offset) throws IOException;
    }

    /**
     * Visits every L2 table and data cluster an L1 table reaches (each compressed cluster's host
     * clusters), in order, at most {@code limit} of them.
     */
    private void walkReachable(long[] l1Table, long limit, ClusterVisitor v) throws IOException {
        long n = 0;
        for (int i = 0; i < l1Table.length && n < limit; i++) {
            long off = l1Table[i] & Layout.OFFSET_MASK;
            if (off == 0) {
                continue;
            }
            v.visit(off);
            n++;
            TableCache.Table t = l2.get(off);
            for (int k = 0; k < layout.l2Entries && n < limit; k++) {
                long e = entry(t, k);
                if ((e & Layout.COMPRESSED) != 0) {
                    long coff = layout.compressedOffset(e);
                    long first = coff >>> layout.clusterBits;
                    long last = (coff + layout.compressedLength(e) - 1) >>> layout.clusterBits;
                    for (long c = first; c <= last && n < limit; c++) {
                        v.visit(c << layout.clusterBits);
                        n++;
                    }
                } else if ((e & Layout.OFFSET_MASK) != 0) {
                    v.visit(e & Layout.OFFSET_MASK);
                    n++;
                }
            }
        }
    }

    /**
     * Adds {@code delta} to the refcount of every L2 table and data cluster an L1 table reaches
     * (snapshot create, delete and revert). Changed refcount blocks are written whenever the
     * cache is full, so memory stays bounded: the caller has made that order safe (increases
     * before the new references exist, decreases after the old ones are gone). If an increase
     * fails (a refcount overflow), the increases made so far are undone.
     */
    void adjustReachable(long[] l1Table, int delta) throws IOException {
        long[] done = {0};
        try {
            walkReachable(l1Table, Long.MAX_VALUE, off -> {
                refcounts.adjust(off, delta);
                done[0]++;
                refcounts.writeBackIfFull();
            });
        } catch (IOException | RuntimeException e) {
            if (delta > 0) {
                try {
                    walkReachable(l1Table, done[0], off -> refcounts.adjust(off, -delta));
                } catch (IOException | RuntimeException undo) {
                    e.addSuppressed(undo);
                }
            }
            throw e;
        }
    }

    /**
     * Sets or clears COPIED on the active L1 and its L2 tables to match the refcounts (which are
     * on disk already); clears it on unallocated entries. Each changed L2 table is written at once, so none stays pinned in memory.
     */
    void fixCopiedFlags() throws IOException {
        boolean l1Changed = false;
        long fileSize = file.size();
        for (int i = 0; i < l1.length; i++) {
            long off = l1[i] & Layout.OFFSET_MASK;
            if (off == 0 || (off & (layout.clusterSize - 1)) != 0 || off >= fileSize) {
                // no table there (a damaged entry stays as it is: check reports it)
                continue;
            }
            boolean one = refcounts.get(off >>> layout.clusterBits) == 1;
            long want = one ? off | Layout.COPIED : off;
            if (want != l1[i]) {
                l1[i] = want;
                l1Changed = true;
            }
            TableCache.Table t = l2.get(off);
            boolean changed = false;
            for (int k = 0; k < layout.l2Entries; k++) {
                long e = entry(t, k);
                long host = e & Layout.OFFSET_MASK;
                if ((e & Layout.COMPRESSED) != 0) {
                    continue;
                }
                boolean dataOne = host != 0 && refcounts.get(host >>> layout.clusterBits) == 1;
                long ne = dataOne ? e | Layout.COPIED : e & ~Layout.COPIED;
                if (ne != e) {
                    t.data.putLong(k * layout.l2EntrySize, ne);
                    changed = true;
                }
            }
            if (changed) {
                l2.write(t);
            }
        }
        if (l1Changed) {
            writeL1();
        }
    }

    BlockIOException corrupt(String what) {
        return new BlockIOException(Errno.EIO, name + ": corrupt image: " + what);
    }
}
