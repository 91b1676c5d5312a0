package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * The refcount table and blocks (spec: "Host cluster management") and the cluster allocator.
 *
 * <p>Crash safety: an increase is written to the file at once, before the caller writes anything
 * that refers to the cluster; a decrease stays in the cache until the references it drops are
 * written ({@link Hooks#writeMappingTables}), so a crash can leak clusters but never leave a
 * cluster referenced with a refcount too low. Freed clusters are punched out of the file only
 * after that, and never reused while a request that looked them up is in flight.
 *
 * <p>Every method runs under the image's metadata lock ({@link #writeBlocks} and {@link #punchFreed}
 * also under its read side and the flush lock, see {@code Qcow2Node#flush}).
 */
final class Refcounts {
    /** What the allocator needs from the image around it. */
    interface Hooks {
        /** Writes dirty L2 tables and L1 entries, with flushes around, before a decrease goes out. */
        void writeMappingTables() throws IOException;

        /** Points the header at a new refcount table (one write of both fields). */
        void writeRefcountTableLocation(long offset, long clusters) throws IOException;

        /** Forgets a freed cluster in other caches (it may have been an L2 table). */
        void clusterFreed(long offset);

        /**
         * Fails (and marks the image corrupt) if clusters the refcounts call free hold metadata;
         * called before anything is written to them.
         */
        void checkFree(long offset, long length) throws IOException;

        /** A new refcount block at {@code offset}, or -1 after the refcount table moved. */
        void refcountMetadataChanged(long offset) throws IOException;

        /** Marks the image corrupt (as QEMU would) and returns the EIO to throw, naming the image. */
        BlockIOException corrupted(String what);

        String describe();
    }

    private final Layout layout;
    private final BlockChild file;
    final TableCache blocks;
    private final ReuseGuard guard;
    private final Hooks hooks;
    long[] table;
    long tableOffset;
    long tableClusters;
    private long freeHint;
    /** Clusters looked at by free-cluster searches (tests check that they do not rescan). */
    long scanned;
    /** One past the highest cluster ever allocated or present in the file. */
    private long frontier;
    private final TreeSet<Long> pendingPunch = new TreeSet<>();
    /** Data clusters allocated ahead (refcount 1 on disk, not referenced yet): index → fresh. */
    private final java.util.ArrayDeque<long[]> reserved = new java.util.ArrayDeque<>();
    private static final int RESERVE = 16;
    /** Whether the cluster {@link #allocateData} returned last lies past the end of the file (reads as zeroes). */
    boolean lastWasFresh;

    Refcounts(Layout layout, BlockChild file, TableCache blocks, ReuseGuard guard, Hooks hooks, long[] table,
              long tableOffset, long tableClusters, long fileSize) {
        this.layout = layout;
        this.file = file;
        this.blocks = blocks;
        this.guard = guard;
        this.hooks = hooks;
        this.table = table;
        this.tableOffset = tableOffset;
        this.tableClusters = tableClusters;
        this.frontier = layout.clustersFor(fileSize);
        this.freeHint = 0;
    }

    static long[] readTable(BlockChild file, long offset, long clusters, int clusterSize) throws IOException {
        int n = (int) (clusters * clusterSize / 8);
        ByteBuffer b = ByteBuffer.allocate(n * 8);
        file.read(offset, b);
        b.flip();
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            t[i] = b.getLong();
        }
        return t;
    }

    // ---- reading and writing entries ----

    long get(long cluster) throws IOException {
        long t = cluster / layout.refblockEntries;
        if (t >= table.length) {
            return 0;
        }
        long entry = table[(int) t];
        if ((entry & Layout.REFTABLE_OFFSET_MASK) == 0) {
            return 0;
        }
        return read(blocks.get(blockOffset(entry, t, false)).data, (int) (cluster % layout.refblockEntries));
    }

    /**
     * The block offset of a refcount table entry, refused if the entry is damaged; about to
     * change the block ({@code writing}), that marks the image corrupt.
     */
    private long blockOffset(long entry, long t, boolean writing) throws BlockIOException {
        long blockOffset = entry & Layout.REFTABLE_OFFSET_MASK;
        String problem = null;
        if ((entry & Layout.REFTABLE_RESERVED) != 0) {
            problem = "refcount table entry " + t + " (0x" + Long.toHexString(entry) + ") has reserved bits set";
        } else if ((blockOffset & (layout.clusterSize - 1)) != 0) {
            problem = "refcount table entry " + t + " points to unaligned offset " + blockOffset;
        }
        if (problem != null) {
            throw writing ? hooks.corrupted(problem) : corrupt(problem);
        }
        return blockOffset;
    }

    long read(ByteBuffer b, int index) {
        int bits = layout.refcountBits;
        switch (bits) {
            case 64: return b.getLong(index * 8);
            case 32: return Integer.toUnsignedLong(b.getInt(index * 4));
            case 16: return Short.toUnsignedLong(b.getShort(index * 2));
            case 8: return Byte.toUnsignedLong(b.get(index));
            default: {
                int bit = index * bits;
                return (b.get(bit >>> 3) >>> (bit & 7)) & ((1 << bits) - 1);
            }
        }
    }

    void write(ByteBuffer b, int index, long value) {
        int bits = layout.refcountBits;
        switch (bits) {
            case 64 -> b.putLong(index * 8, value);
            case 32 -> b.putInt(index * 4, (int) value);
            case 16 -> b.putShort(index * 2, (short) value);
            case 8 -> b.put(index, (byte) value);
            default -> {
                int bit = index * bits;
                int mask = ((1 << bits) - 1) << (bit & 7);
                int old = b.get(bit >>> 3);
                b.put(bit >>> 3, (byte) ((old & ~mask) | ((int) (value << (bit & 7)) & mask)));
            }
        }
    }

    /** The byte range [from, to) of a block that holds entries [first, last]. */
    private int[] byteRange(int first, int last) {
        int bits = layout.refcountBits;
        int from = (int) ((long) first * bits / 8);
        int to = (int) (((long) last * bits + bits + 7) / 8);
        return new int[] {from, to};
    }

    // ---- allocation ----

    /**
     * How many clusters past everything in the file or allocated a search may find in use before
     * it gives up: a crash leaves a few there (refcounts go out before the data), a hostile
     * image (every refcount block full, table entries pointing at data) would keep the search
     * going through the whole address space.
     */
    private long pastEndLimit() {
        return Math.max(4096, (1L << 30) >>> layout.clusterBits);
    }

    private BlockIOException pastEndInUse(long from) {
        return hooks.corrupted("the refcounts say more than " + pastEndLimit() + " clusters past the end of the "
                + "image are in use (from host offset " + (from << layout.clusterBits)
                + "): refusing to search on for a free cluster");
    }

    /** Allocates {@code n} contiguous free clusters, sets their refcounts to 1 on disk, returns the offset. */
    long allocate(int n) throws IOException {
        long c = Math.max(freeHint, 1);
        long start = c;
        int run = 0;
        long firstCandidate = -1;
        long end = frontier;
        long pastEnd = 0;
        while (run < n) {
            if (c >= (Layout.OFFSET_MASK >>> layout.clusterBits)) {
                throw new BlockIOException(Errno.ENOSPC, hooks.describe() + ": the image is full");
            }
            long t = c / layout.refblockEntries;
            if (t >= table.length || table[(int) t] == 0) {
                if (n > 1) {
                    // a block placed at the start of its own range would cut the run: go to the end
                    return allocateAtFrontier(n);
                }
                ensureBlock(t);
                continue;
            }
            long rc = get(c);
            scanned++;
            if (rc == 0 && firstCandidate < 0) {
                firstCandidate = c;
            }
            if (rc == 0 && !guard.isQuarantined(c)) {
                if (run == 0) {
                    start = c;
                }
                run++;
            } else {
                if (c >= end && ++pastEnd > pastEndLimit()) {
                    throw pastEndInUse(end);
                }
                run = 0;
            }
            c++;
        }
        moveHint(firstCandidate, start, n);
        hooks.checkFree(start << layout.clusterBits, (long) n << layout.clusterBits);
        for (long i = start; i < start + n; i++) {
            pendingPunch.remove(i);
        }
        increaseAndPersist(start, n);
        frontier = Math.max(frontier, start + n);
        return start << layout.clusterBits;
    }

    /**
     * One cluster for guest data. Clusters are taken from the allocator in contiguous runs and
     * their refcounts written in one go, so a stream of allocating writes does not pay a refcount
     * write each; a crash leaks the unused rest of a run, {@link #releaseReserved} frees it.
     */
    long allocateData() throws IOException {
        if (reserved.isEmpty()) {
            reserveRun();
        }
        long[] r = reserved.poll();
        lastWasFresh = r[1] != 0;
        return r[0] << layout.clusterBits;
    }

    private void reserveRun() throws IOException {
        long fileEnd = file.size();
        long c = Math.max(freeHint, 1);
        long start = -1;
        int n = 0;
        long firstCandidate = -1;
        long end = frontier;
        long pastEnd = 0;
        while (true) {
            if (c >= (Layout.OFFSET_MASK >>> layout.clusterBits)) {
                throw new BlockIOException(Errno.ENOSPC, hooks.describe() + ": the image is full");
            }
            long t = c / layout.refblockEntries;
            if (t >= table.length || table[(int) t] == 0) {
                if (n > 0) {
                    break;
                }
                ensureBlock(t);
                continue;
            }
            long rc = get(c);
            scanned++;
            if (rc == 0 && firstCandidate < 0) {
                firstCandidate = c;
            }
            if (rc == 0 && !guard.isQuarantined(c)) {
                if (n == 0) {
                    start = c;
                }
                n++;
                if (n == RESERVE || (c + 1) % layout.refblockEntries == 0) {
                    break;
                }
            } else if (n > 0) {
                break;
            } else if (c >= end && ++pastEnd > pastEndLimit()) {
                throw pastEndInUse(end);
            }
            c++;
        }
        moveHint(firstCandidate, start, n);
        hooks.checkFree(start << layout.clusterBits, (long) n << layout.clusterBits);
        for (long i = start; i < start + n; i++) {
            pendingPunch.remove(i);
        }
        increaseAndPersist(start, n);
        frontier = Math.max(frontier, start + n);
        for (long i = start; i < start + n; i++) {
            reserved.add(new long[] {i, (i << layout.clusterBits) >= fileEnd ? 1 : 0});
        }
    }

    /**
     * After a search from the hint took [start, start+n): every cluster between the hint and the
     * first one with refcount 0 is in use, so the next search starts there (or past the run if
     * that was the run), instead of rescanning the same used clusters on every allocation.
     */
    private void moveHint(long firstCandidate, long start, long n) {
        if (firstCandidate < 0) {
            return;
        }
        freeHint = firstCandidate == start ? start + n : firstCandidate;
    }

    /** Frees the clusters allocated ahead and not used (before close, check and snapshots). */
    void releaseReserved() throws IOException {
        while (!reserved.isEmpty()) {
            free(reserved.poll()[0] << layout.clusterBits);
        }
    }

    /**
     * Allocates {@code n} clusters past everything in use, followed by the refcount blocks that
     * describe them and themselves, all written before the table points to the new blocks.
     */
    private long allocateAtFrontier(int n) throws IOException {
        int entries = layout.refblockEntries;
        long f;
        long m;
        long from = frontier;
        while (true) {
            f = frontier;
            m = 0;
            while (true) {
                long end = f + n + m;
                long need = 0;
                for (long b = f / entries; b <= (end - 1) / entries; b++) {
                    if (b >= table.length || table[(int) b] == 0) {
                        need++;
                    }
                }
                if (need == m) {
                    break;
                }
                m = need;
            }
            long maxBlock = (f + n + m - 1) / entries;
            if (maxBlock >= table.length) {
                growTable(maxBlock);
                continue;
            }
            // a crash can leave refcounts past the end of the file: step over them
            long busy = -1;
            for (long c = f; c < f + n + m; c++) {
                if (get(c) != 0 || guard.isQuarantined(c)) {
                    busy = c;
                }
            }
            if (busy < 0) {
                break;
            }
            if (busy + 1 - from > pastEndLimit()) {
                throw pastEndInUse(from);
            }
            frontier = busy + 1;
        }
        long end = f + n + m;
        hooks.checkFree(f << layout.clusterBits, (end - f) << layout.clusterBits);
        List<TableCache.Table> created = new ArrayList<>();
        List<Integer> createdIndex = new ArrayList<>();
        long next = f + n;
        for (long b = f / entries; b <= (end - 1) / entries; b++) {
            if (table[(int) b] == 0) {
                long off = next++ << layout.clusterBits;
                created.add(new TableCache.Table(off, ByteBuffer.allocate(layout.clusterSize)));
                createdIndex.add((int) b);
            }
        }
        List<TableCache.Table> touched = new ArrayList<>();
        for (long c = f; c < end; c++) {
            int b = (int) (c / entries);
            TableCache.Table blk = null;
            int k = createdIndex.indexOf(b);
            if (k >= 0) {
                blk = created.get(k);
            } else {
                blk = blocks.get(blockOffset(table[b], b, true));
                if (!touched.contains(blk)) {
                    touched.add(blk);
                }
            }
            int i = (int) (c % entries);
            write(blk.data, i, read(blk.data, i) + 1);
        }
        for (TableCache.Table nb : created) {
            file.write(nb.offset, nb.data.duplicate().clear());
        }
        for (TableCache.Table ob : touched) {
            if (ob.pendingDecrement) {
                hooks.writeMappingTables();
            }
            blocks.write(ob);
        }
        if (!created.isEmpty()) {
            // the new blocks durable before the table points to them
            file.flush();
        }
        for (int k = 0; k < created.size(); k++) {
            table[createdIndex.get(k)] = created.get(k).offset;
            writeTableEntry(createdIndex.get(k));
            hooks.refcountMetadataChanged(created.get(k).offset);
        }
        for (long i = f; i < end; i++) {
            pendingPunch.remove(i);
        }
        frontier = end;
        return f << layout.clusterBits;
    }

    /** Raises the refcounts of [first, first+n) by one and writes the change through. */
    void increaseAndPersist(long first, long n) throws IOException {
        long c = first;
        while (c < first + n) {
            long t = c / layout.refblockEntries;
            TableCache.Table block = blockFor(t);
            int from = (int) (c % layout.refblockEntries);
            int to = (int) Math.min(layout.refblockEntries - 1, from + (first + n - c) - 1);
            for (int i = from; i <= to; i++) {
                long v = read(block.data, i);
                if (v >= layout.refcountMax) {
                    for (int j = from; j < i; j++) {
                        write(block.data, j, read(block.data, j) - 1);
                    }
                    throw overflow((t * layout.refblockEntries + i) << layout.clusterBits);
                }
                write(block.data, i, v + 1);
            }
            persist(block, from, to);
            c += to - from + 1;
        }
    }

    private void persist(TableCache.Table block, int firstEntry, int lastEntry) throws IOException {
        if (blocks.isDirty(block)) {
            if (block.pendingDecrement) {
                hooks.writeMappingTables();
            }
            blocks.write(block);
            return;
        }
        int[] r = byteRange(firstEntry, lastEntry);
        // a file that takes whole blocks only (O_DIRECT) gets the aligned range around the change
        // from the block, which equals the file there (it is clean), instead of reading it back
        int align = file.node().requestAlignment();
        if (align > 1) {
            r[0] = r[0] / align * align;
            r[1] = Math.min(block.data.capacity(), (r[1] + align - 1) / align * align);
        }
        file.write(block.offset + r[0], block.data.duplicate().limit(r[1]).position(r[0]));
    }

    /**
     * Changes a refcount in the cache only (bulk updates for snapshots); the caller writes the
     * blocks with {@link #writeBlocks} in the order its operation needs, or bounds them with
     * {@link #writeBackIfFull}.
     */
    void adjust(long offset, long delta) throws IOException {
        long cluster = offset >>> layout.clusterBits;
        long t = cluster / layout.refblockEntries;
        TableCache.Table block = blockFor(t);
        int i = (int) (cluster % layout.refblockEntries);
        long v = read(block.data, i);
        long nv = v + delta;
        if (nv < 0) {
            throw corrupt("refcount of cluster at offset " + offset + " would drop below 0");
        }
        if (nv > layout.refcountMax) {
            throw overflow(offset);
        }
        write(block.data, i, nv);
        blocks.markDirty(block);
        if (delta < 0) {
            block.pendingDecrement = true;
            if (nv == 0) {
                released(cluster);
            }
        }
    }

    /** Drops one reference to the cluster at {@code offset}; the decrease is written later. */
    void free(long offset) throws IOException {
        adjust(offset, -1);
    }

    /** Frees {@code n} clusters starting at {@code offset}. */
    void free(long offset, long n) throws IOException {
        for (long i = 0; i < n; i++) {
            free(offset + (i << layout.clusterBits));
        }
    }

    private void released(long cluster) {
        guard.quarantine(cluster);
        pendingPunch.add(cluster);
        if (cluster < freeHint) {
            freeHint = cluster;
        }
        hooks.clusterFreed(cluster << layout.clusterBits);
    }

    /**
     * Keeps the pinned blocks within the cache's capacity during bulk changes (snapshots, check):
     * when it is full, writes them, after the mapping tables if one holds a decrease.
     */
    void writeBackIfFull() throws IOException {
        if (!tooManyDirtyBlocks()) {
            return;
        }
        if (blocks.anyPendingDecrement()) {
            hooks.writeMappingTables();
        }
        blocks.writeBack();
    }

    /** True when the dirty refcount blocks should be written back ({@link TableCache#tooManyDirty}). */
    boolean tooManyDirtyBlocks() {
        return blocks.tooManyDirty(table.length);
    }

    /** Writes dirty refcount blocks (the caller has written what must precede them). */
    void writeBlocks() throws IOException {
        blocks.writeBack();
    }

    boolean hasDirtyBlocks() {
        return blocks.hasDirty();
    }

    /** Punches freed clusters out of the file, once the references to them are on disk. */
    void punchFreed() throws IOException {
        long lowestQuarantined = guard.purge();
        List<long[]> runs = new ArrayList<>();
        for (long c : pendingPunch) {
            if (get(c) != 0) {
                continue;
            }
            if (!runs.isEmpty() && runs.get(runs.size() - 1)[1] == c) {
                runs.get(runs.size() - 1)[1] = c + 1;
            } else {
                runs.add(new long[] {c, c + 1});
            }
        }
        pendingPunch.clear();
        for (long[] r : runs) {
            file.discard(r[0] << layout.clusterBits, (r[1] - r[0]) << layout.clusterBits);
        }
        if (lowestQuarantined >= 0 && lowestQuarantined < freeHint) {
            freeHint = lowestQuarantined;
        }
    }

    // ---- growing the structure ----

    private TableCache.Table blockFor(long t) throws IOException {
        if (t >= table.length || table[(int) t] == 0) {
            ensureBlock(t);
        }
        return blocks.get(blockOffset(table[(int) t], t, true));
    }

    /** Makes refcount block {@code t} exist, growing the table if needed. */
    private void ensureBlock(long t) throws IOException {
        if (t >= table.length) {
            growTable(t);
            return;
        }
        if (t == 0) {
            throw corrupt("refcount block 0 is missing");
        }
        // Nothing in a missing block's range is in use, so the block can describe itself at the
        // first cluster of its range.
        long cluster = t * layout.refblockEntries;
        long offset = cluster << layout.clusterBits;
        hooks.checkFree(offset, layout.clusterSize);
        TableCache.Table block = blocks.create(offset);
        write(block.data, 0, 1);
        blocks.write(block);
        // the block (and its own refcount) durable before the table points to it
        file.flush();
        table[(int) t] = offset;
        writeTableEntry((int) t);
        hooks.refcountMetadataChanged(offset);
        frontier = Math.max(frontier, cluster + 1);
    }

    private void writeTableEntry(int t) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8).putLong(0, table[t]);
        file.write(tableOffset + t * 8L, b);
    }

    /**
     * Moves the refcount table to a bigger area at the end of the image that also holds the new
     * blocks needed to describe that area, so the new layout is complete before the header
     * points to it.
     */
    private void growTable(long neededIndex) throws IOException {
        int entries = layout.refblockEntries;
        int perCluster = layout.clusterSize / 8;
        long a = Math.max(frontier, (long) table.length * entries);
        a = Math.max(a, neededIndex * entries);
        long newEntries = roundUp(Math.max((long) table.length * 2, neededIndex + 1), perCluster);
        long nBlocks;
        long tableCl;
        while (true) {
            tableCl = newEntries / perCluster;
            nBlocks = 0;
            while (true) {
                long end = a + nBlocks + tableCl;
                long need = 0;
                for (long b = a / entries; b <= (end - 1) / entries; b++) {
                    if (b >= table.length || table[(int) b] == 0) {
                        need++;
                    }
                }
                if (need == nBlocks) {
                    break;
                }
                nBlocks = need;
            }
            long maxBlock = (a + nBlocks + tableCl - 1) / entries;
            if (maxBlock < newEntries && neededIndex < newEntries) {
                break;
            }
            newEntries = roundUp(Math.max(maxBlock, neededIndex) + 1, perCluster) * 2;
        }
        if (tableCl * layout.clusterSize > Qcow2Header.MAX_REFTABLE_BYTES) {
            throw new BlockIOException(Errno.ENOSPC, hooks.describe() + ": the refcount table cannot grow past "
                    + (Qcow2Header.MAX_REFTABLE_BYTES >> 20) + " MiB");
        }
        hooks.checkFree(a << layout.clusterBits, (nBlocks + tableCl) << layout.clusterBits);
        long[] newTable = java.util.Arrays.copyOf(table, (int) newEntries);
        List<TableCache.Table> newBlocks = new ArrayList<>();
        long next = a;
        long end = a + nBlocks + tableCl;
        for (long b = a / entries; b <= (end - 1) / entries; b++) {
            if (newTable[(int) b] == 0) {
                long off = next++ << layout.clusterBits;
                newTable[(int) b] = off;
                newBlocks.add(new TableCache.Table(off, ByteBuffer.allocate(layout.clusterSize)));
            }
        }
        long newTableOffset = next << layout.clusterBits;
        List<TableCache.Table> touchedOld = new ArrayList<>();
        for (long c = a; c < end; c++) {
            long b = c / entries;
            long off = newTable[(int) b];
            TableCache.Table blk = null;
            for (TableCache.Table nb : newBlocks) {
                if (nb.offset == off) {
                    blk = nb;
                    break;
                }
            }
            if (blk == null) {
                blk = blocks.get(off);
                if (!touchedOld.contains(blk)) {
                    touchedOld.add(blk);
                }
            }
            write(blk.data, (int) (c % entries), 1);
        }
        for (TableCache.Table nb : newBlocks) {
            file.write(nb.offset, nb.data.duplicate().clear());
        }
        for (TableCache.Table ob : touchedOld) {
            if (ob.pendingDecrement) {
                hooks.writeMappingTables();
            }
            blocks.write(ob);
        }
        ByteBuffer tb = ByteBuffer.allocate((int) (tableCl * layout.clusterSize));
        for (long e : newTable) {
            tb.putLong(e);
        }
        tb.clear();
        file.write(newTableOffset, tb);
        file.flush();
        hooks.writeRefcountTableLocation(newTableOffset, tableCl);
        long oldOffset = tableOffset;
        long oldClusters = tableClusters;
        table = newTable;
        tableOffset = newTableOffset;
        tableClusters = tableCl;
        frontier = Math.max(frontier, end);
        for (TableCache.Table nb : newBlocks) {
            blocks.drop(nb.offset);
        }
        hooks.refcountMetadataChanged(-1);
        free(oldOffset, oldClusters);
    }

    private static long roundUp(long v, long m) {
        return (v + m - 1) / m * m;
    }

    /**
     * Switches to a refcount table and blocks written elsewhere (a rebuild by the check): points
     * the header at the table, forgets the cached blocks and the allocator's position.
     */
    void replaceStructure(long[] newTable, long newTableOffset, long newTableClusters, long fileEnd)
            throws IOException {
        if (!reserved.isEmpty()) {
            throw new IllegalStateException("clusters allocated ahead during a rebuild");
        }
        hooks.writeRefcountTableLocation(newTableOffset, newTableClusters);
        table = newTable;
        tableOffset = newTableOffset;
        tableClusters = newTableClusters;
        blocks.clear();
        pendingPunch.clear();
        freeHint = 0;
        frontier = Math.max(frontier, layout.clustersFor(fileEnd));
    }

    /** One past the highest cluster in use or in the file. */
    long frontier() {
        return frontier;
    }

    void noteFileEnd(long bytes) {
        frontier = Math.max(frontier, layout.clustersFor(bytes));
    }

    /** Total clusters the table can describe. */
    long coveredClusters() {
        return (long) table.length * layout.refblockEntries;
    }

    private BlockIOException overflow(long offset) {
        return new BlockIOException(Errno.ERANGE, hooks.describe() + ": refcount overflow at cluster offset "
                + offset + " (refcount_bits=" + layout.refcountBits + ")");
    }

    BlockIOException corrupt(String what) {
        return new BlockIOException(Errno.EIO, hooks.describe() + ": corrupt image: " + what);
    }
}
