package io.diskstack.formats.qcow2;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.diskstack.core.BackingImage;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.options.Sizes;
import io.diskstack.core.snapshot.InternalSnapshots;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.logging.Logger;

/**
 * An open qcow2 image. Metadata (L1, L2 cache, refcounts) changes under one lock; data I/O runs
 * outside it on host offsets looked up under it. A guest cluster being allocated is marked in
 * flight, and every other write, zero or discard of that cluster waits for it, so concurrent
 * allocating writes neither lose updates nor allocate twice. Snapshot operations hold the gate
 * exclusively, which drains the node's requests.
 */
final class Qcow2Node extends BlockNode implements InternalSnapshots {
    private static final Logger LOG = Logger.getLogger(Qcow2Node.class.getName());

    final BlockChild file;
    /** The backing edge, or null; a stream or commit changes it (drained) through changeBackingFile. */
    volatile BlockChild backing;
    final Qcow2Header header;
    final Layout layout;
    final String describe;
    volatile long size;

    /**
     * Metadata lock: lookups share its read side, every change takes the write side ({@link #lock}),
     * so concurrent reads and in-place writes do not queue behind one another.
     */
    private final ReentrantReadWriteLock meta = new ReentrantReadWriteLock();
    final Lock lock = meta.writeLock();
    private final Lock lookupLock = meta.readLock();
    /** Serialises {@link #flush}, which writes back under {@link #lookupLock} only. */
    private final Lock flushLock = new java.util.concurrent.locks.ReentrantLock();
    private final Condition allocDone = lock.newCondition();
    final ReentrantReadWriteLock gate = new ReentrantReadWriteLock();
    private final Set<Long> inFlight = new HashSet<>();
    final ReuseGuard guard = new ReuseGuard();
    final TableCache l2cache;
    final TableCache refcache;
    final ClusterMap map;
    final Refcounts refcounts;
    final Snapshots snapshots;
    /** Where the metadata is, so that no data write or new cluster lands on it. */
    final Overlaps overlaps;
    private boolean overlapsBuilt;
    /** Corruption was found while running: every further change is refused. */
    private volatile boolean markedCorrupt;
    private final Cache<Long, byte[]> decompressed = Caffeine.newBuilder().maximumSize(16).build();

    private volatile boolean written;
    private boolean dirtySetByUs;
    private final java.util.concurrent.atomic.LongAdder compressedReads = new java.util.concurrent.atomic.LongAdder();
    private long allocations;
    /**
     * Clusters allocated since the metadata was last written back: all of them leak if the
     * process dies now (their refcounts are on disk, the L2 entries not yet), so their number is
     * bounded ({@link #syncBehindAllocations}, {@link #maybeWriteBack}).
     */
    private long allocatedSinceWriteBack;
    /**
     * Bytes of guest data written to newly allocated clusters since the last
     * {@link #syncBehindAllocations}: what its sync has to write out (counting the clusters instead
     * made 4 KiB writes to a fresh image sync every 1024 writes).
     */
    private final java.util.concurrent.atomic.AtomicLong newSinceSync = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicBoolean syncingBehind = new java.util.concurrent.atomic.AtomicBoolean();
    /** The sync behind allocations running on {@link #SYNC_BEHIND}, if any. */
    private volatile java.util.concurrent.Future<?> syncBehind;
    /** Why the last sync behind allocations failed, until a flush has reported it. */
    private final java.util.concurrent.atomic.AtomicReference<String> syncBehindFailure =
            new java.util.concurrent.atomic.AtomicReference<>();
    private static final long SYNC_BEHIND_BYTES = 64L << 20;
    /**
     * Runs the syncs behind allocations, at most one per image at a time, so that no guest write
     * waits for one: a sync's only job is to start the disk early (the ordered write-back makes
     * its own syncs); a failed one is reported at the next flush ({@link #syncBehindFailure}).
     */
    private static final java.util.concurrent.ExecutorService SYNC_BEHIND =
            java.util.concurrent.Executors.newCachedThreadPool(r -> {
                Thread t = new Thread(r, "qcow2-sync-behind");
                t.setDaemon(true);
                return t;
            });

    Qcow2Node(NodeOpenContext ctx, BlockChild file, BlockChild backing, Qcow2Header header, String describe,
              long[] l1, long[] refTable, SnapshotTable.Parsed snapshotTable, long l2CacheBytes,
              long refcountCacheBytes, java.util.Set<Overlaps.Kind> overlapCheck) {
        super(ctx);
        this.file = file;
        this.backing = backing;
        this.header = header;
        this.layout = header.layout();
        this.describe = describe;
        this.size = header.size;
        this.l2cache = new TableCache(file, layout.clusterSize, l2CacheBytes);
        this.refcache = new TableCache(file, layout.clusterSize, refcountCacheBytes);
        this.map = new ClusterMap(layout, file, l2cache, l1, header.l1TableOffset, header.version >= 3, describe);
        this.refcounts = new Refcounts(layout, file, refcache, guard, new Refcounts.Hooks() {
            @Override
            public void writeMappingTables() throws IOException {
                Qcow2Node.this.writeMappingTables();
            }

            @Override
            public void writeRefcountTableLocation(long offset, long clusters) throws IOException {
                ByteBuffer b = ByteBuffer.allocate(12).putLong(0, offset).putInt(8, (int) clusters);
                file.write(Qcow2Header.OFF_REFTABLE_OFFSET, b);
                file.flush();
                header.refcountTableOffset = offset;
                header.refcountTableClusters = clusters;
            }

            @Override
            public void clusterFreed(long offset) {
                l2cache.drop(offset);
            }

            @Override
            public void checkFree(long offset, long length) throws IOException {
                checkNotMetadata(offset, length, "a new cluster");
            }

            @Override
            public void refcountMetadataChanged(long offset) throws IOException {
                if (offset < 0) {
                    overlaps.rebuild();
                } else {
                    overlaps.add(Overlaps.Kind.REFCOUNT_BLOCK, offset);
                }
            }

            @Override
            public BlockIOException corrupted(String what) {
                return corruption(what);
            }

            @Override
            public String describe() {
                return describe;
            }
        }, refTable, header.refcountTableOffset, header.refcountTableClusters, file.size());
        this.overlaps = new Overlaps(layout, this::collectMetadata, overlapCheck);
        this.map.setRefcounts(refcounts, overlaps);
        this.snapshots = new Snapshots(this, snapshotTable);
    }

    // ---- geometry ----

    @Override
    public long size() {
        return size;
    }

    @Override
    public int requestAlignment() {
        return 512;
    }

    @Override
    public int clusterSize() {
        return layout.clusterSize;
    }

    @Override
    public String details() {
        StringBuilder s = new StringBuilder("v").append(header.version).append("  cluster ")
                .append(Sizes.format(layout.clusterSize));
        if (layout.extendedL2) {
            s.append("  extended-l2");
        }
        if (header.compressionType == Compression.ZSTD) {
            s.append("  zstd");
        }
        int n = snapshots.count();
        if (n > 0) {
            s.append("  ").append(n).append(n == 1 ? " snapshot" : " snapshots");
        }
        return s.toString();
    }

    /** qemu-img info's fields for qcow2: cluster size, dirty bit, backing file, and its format-specific part. */
    @Override
    public void describeImage(io.diskstack.core.info.ImageFacts facts) {
        facts.clusterSize(layout.clusterSize).dirty(header.isDirty());
        if (header.backingFile != null && !header.backingFile.isEmpty()) {
            facts.backingFile(header.backingFile, header.backingFormat == null || header.backingFormat.isEmpty()
                    ? null : header.backingFormat);
        }
        Map<String, Object> data = new java.util.LinkedHashMap<>();
        data.put("compat", header.version >= 3 ? "1.1" : "0.10");
        data.put("compression-type", header.compressionType == Compression.ZSTD ? "zstd" : "zlib");
        if (header.version >= 3) {
            data.put("lazy-refcounts", (header.compatible & Qcow2Header.COMPAT_LAZY_REFCOUNTS) != 0);
        }
        data.put("refcount-bits", layout.refcountBits);
        if (header.version >= 3) {
            data.put("corrupt", header.isCorrupt());
            data.put("extended-l2", layout.extendedL2);
        }
        facts.formatSpecific("qcow2", data);
    }

    @Override
    public Map<String, Long> stats() {
        return Map.of("l2-cache.hits", l2cache.hits.sum(), "l2-cache.misses", l2cache.misses.sum(),
                "refcount-cache.hits", refcache.hits.sum(), "refcount-cache.misses", refcache.misses.sum(),
                "compressed-reads", compressedReads.sum(), "allocations", allocations);
    }

    // ---- reads ----

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        gate.readLock().lock();
        long ticket = guard.enter();
        try {
            readMapped(map.l1, offset, dst);
        } finally {
            guard.exit(ticket);
            gate.readLock().unlock();
        }
    }

    /** Reads guest bytes through an L1 table (the active one or a snapshot's). */
    void readMapped(long[] l1, long offset, ByteBuffer dst) throws IOException {
        int base = dst.position();
        int len = dst.remaining();
        long pos = 0;
        List<ClusterMap.Extent> extents = new ArrayList<>();
        while (pos < len) {
            extents.clear();
            lookupLock.lock();
            try {
                long p = pos;
                while (p < len && extents.size() < 64) {
                    ClusterMap.Extent e = map.lookup(l1, offset + p, len - p);
                    int last = extents.size() - 1;
                    if (last >= 0 && mergeable(extents.get(last), e)) {
                        ClusterMap.Extent prev = extents.get(last);
                        extents.set(last, new ClusterMap.Extent(prev.kind(), prev.host(), prev.length() + e.length()));
                    } else {
                        extents.add(e);
                    }
                    p += e.length();
                }
            } finally {
                lookupLock.unlock();
            }
            for (ClusterMap.Extent e : extents) {
                ByteBuffer part = dst.slice(base + (int) pos, (int) e.length());
                switch (e.kind()) {
                    case ClusterMap.DATA -> file.read(e.host(), part);
                    case ClusterMap.ZERO -> fillZeroes(part);
                    case ClusterMap.UNALLOCATED -> readBacking(offset + pos, part);
                    default -> readCompressed(e.host(), layout.offsetInCluster(offset + pos), part);
                }
                pos += e.length();
            }
        }
        dst.position(base + len);
    }

    private static boolean mergeable(ClusterMap.Extent a, ClusterMap.Extent b) {
        if (a.kind() != b.kind() || a.kind() == ClusterMap.COMPRESSED) {
            return false;
        }
        return a.kind() != ClusterMap.DATA || a.host() + a.length() == b.host();
    }

    void readBacking(long guestOffset, ByteBuffer part) throws IOException {
        if (backing == null) {
            fillZeroes(part);
            return;
        }
        long bsize = backing.size();
        int n = part.remaining();
        int inside = (int) Math.max(0, Math.min(n, bsize - guestOffset));
        if (inside > 0) {
            backing.read(guestOffset, part.slice(part.position(), inside));
        }
        if (inside < n) {
            fillZeroes(part.slice(part.position() + inside, n - inside));
        }
        part.position(part.limit());
    }

    private void readCompressed(long entry, long inCluster, ByteBuffer part) throws IOException {
        byte[] cluster = decompress(entry);
        part.put(cluster, (int) inCluster, part.remaining());
    }

    byte[] decompress(long entry) throws IOException {
        byte[] cached = decompressed.getIfPresent(entry);
        if (cached != null) {
            return cached;
        }
        long coff = layout.compressedOffset(entry);
        int clen = (int) layout.compressedLength(entry);
        byte[] in = new byte[clen];
        file.read(coff, ByteBuffer.wrap(in));
        byte[] out = new byte[layout.clusterSize];
        if (!Compression.decompress(header.compressionType, in, clen, out)) {
            throw new BlockIOException(Errno.EIO, describe + ": corrupt image: compressed cluster at offset " + coff
                    + " does not decompress");
        }
        compressedReads.increment();
        decompressed.put(entry, out);
        return out;
    }

    static void fillZeroes(ByteBuffer b) {
        while (b.hasRemaining()) {
            b.put(BufferPool.zeroes(Math.min(b.remaining(), 1 << 20)));
        }
    }

    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        gate.readLock().lock();
        lookupLock.lock();
        try {
            ClusterMap.Extent first = map.lookup(map.l1, offset, length);
            long total = first.length();
            for (int i = 0; i < 65536 && total < length; i++) {
                ClusterMap.Extent e = map.lookup(map.l1, offset + total, length - total);
                if (e.kind() != first.kind() || (e.kind() == ClusterMap.DATA && e.host() != first.host() + total)) {
                    break;
                }
                total += e.length();
            }
            return switch (first.kind()) {
                case ClusterMap.DATA -> new BlockStatus(total, BlockStatus.ALLOCATED | BlockStatus.DATA
                        | BlockStatus.OFFSET_VALID, null, first.host());
                case ClusterMap.ZERO -> BlockStatus.of(total, BlockStatus.ALLOCATED | BlockStatus.ZERO);
                case ClusterMap.COMPRESSED -> BlockStatus.of(total, BlockStatus.ALLOCATED | BlockStatus.DATA);
                default -> BlockStatus.of(total, backing == null ? BlockStatus.ZERO : 0);
            };
        } finally {
            lookupLock.unlock();
            gate.readLock().unlock();
        }
    }

    // ---- writes ----

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        gate.readLock().lock();
        long ticket = guard.enter();
        try {
            beforeWrite();
            int base = src.position();
            int len = src.remaining();
            long pos = 0;
            while (pos < len) {
                pos += writeInPlace(offset + pos, src.slice(base + (int) pos, len - (int) pos));
                if (pos < len) {
                    long off = offset + pos;
                    long whole = layout.offsetInCluster(off) == 0 ? (len - pos) >>> layout.clusterBits : 0;
                    long n = whole >= 2 ? writeNewClusters(off, src.slice(base + (int) pos, len - (int) pos)) : 0;
                    if (n == 0) {
                        n = Math.min(len - pos, layout.clusterSize - layout.offsetInCluster(off));
                        writeCluster(off, src.slice(base + (int) pos, (int) n));
                    }
                    pos += n;
                }
            }
            src.position(base + len);
        } finally {
            guard.exit(ticket);
            gate.readLock().unlock();
        }
        syncBehindAllocations();
    }

    /** True if [inCluster, inCluster+n) of a cluster with this entry can be overwritten where it is. */
    private boolean inPlace(long e, long bitmap, long inCluster, long n) {
        if ((e & Layout.COPIED) == 0 || (e & Layout.COMPRESSED) != 0 || (e & Layout.OFFSET_MASK) == 0) {
            return false;
        }
        if (!layout.extendedL2) {
            return (e & Layout.ZERO) == 0;
        }
        int from = (int) (inCluster / layout.subclusterSize);
        int to = (int) ((inCluster + n - 1) / layout.subclusterSize);
        long mask = (to == 31 ? 0xffff_ffffL : (1L << (to + 1)) - 1) & ~((1L << from) - 1);
        return (bitmap & mask) == mask;
    }

    /** Writes the longest prefix that needs no metadata change; returns its length. */
    private long writeInPlace(long offset, ByteBuffer src) throws IOException {
        int len = src.remaining();
        List<long[]> runs = new ArrayList<>();
        long p = 0;
        long bad = -1;
        lookupLock.lock();
        try {
            while (p < len) {
                long off = offset + p;
                long inC = layout.offsetInCluster(off);
                long n = Math.min(len - p, layout.clusterSize - inC);
                if (inFlight.contains(off >>> layout.clusterBits)) {
                    break;
                }
                TableCache.Table t = map.table(map.l1, off);
                if (t == null) {
                    break;
                }
                int idx = layout.l2Index(off);
                long e = map.entry(t, idx);
                if (!inPlace(e, map.bitmap(t, idx), inC, n)) {
                    break;
                }
                long host = (e & Layout.OFFSET_MASK) + inC;
                if (overlaps.overlap(host, n)) {
                    bad = host;
                    break;
                }
                long[] last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
                if (last != null && last[0] + last[2] == host) {
                    last[2] += n;
                } else {
                    runs.add(new long[] {host, p, n});
                }
                p += n;
            }
        } finally {
            lookupLock.unlock();
        }
        int base = src.position();
        for (long[] r : runs) {
            file.write(r[0], src.slice(base + (int) r[1], (int) r[2]));
        }
        if (bad >= 0 && p == 0) {
            lock.lock();
            try {
                checkNotMetadata(bad, layout.clusterSize - layout.offsetInCluster(bad), "guest data");
            } finally {
                lock.unlock();
            }
        }
        return p;
    }

    /**
     * Writes whole clusters that hold no host cluster yet (unallocated or zero) into one run of
     * new contiguous host clusters with a single data write. Returns the bytes written, 0 if the
     * first two clusters do not qualify.
     */
    private long writeNewClusters(long off, ByteBuffer src) throws IOException {
        int cs = layout.clusterSize;
        long spanEnd = (off / layout.l2Span() + 1) * layout.l2Span();
        int max = (int) Math.min(Math.min(src.remaining() / cs, (spanEnd - off) / cs), 256);
        long first = off >>> layout.clusterBits;
        int k = 0;
        long host;
        lock.lock();
        try {
            TableCache.Table t = map.table(map.l1, off);
            while (k < max && !inFlight.contains(first + k)) {
                if (t != null) {
                    long e = map.entry(t, layout.l2Index(off + ((long) k << layout.clusterBits)));
                    if ((e & Layout.COMPRESSED) != 0 || (e & Layout.OFFSET_MASK) != 0) {
                        break;
                    }
                }
                k++;
            }
            if (k < 2) {
                return 0;
            }
            map.tableForWrite(off);
            host = refcounts.allocate(k);
            allocations += k;
            allocatedSinceWriteBack += k;
            newSinceSync.addAndGet(k << layout.clusterBits);
            for (int i = 0; i < k; i++) {
                inFlight.add(first + i);
            }
        } finally {
            lock.unlock();
        }
        boolean ok = false;
        try {
            file.write(host, src.slice(src.position(), k * cs));
            ok = true;
        } finally {
            lock.lock();
            try {
                if (ok) {
                    TableCache.Table t = map.tableForWrite(off);
                    long bitmap = layout.extendedL2 ? 0xffff_ffffL : 0;
                    for (int i = 0; i < k; i++) {
                        map.set(t, layout.l2Index(off + ((long) i << layout.clusterBits)),
                                (host + ((long) i << layout.clusterBits)) | Layout.COPIED, bitmap);
                    }
                } else {
                    refcounts.free(host, k);
                }
            } finally {
                for (int i = 0; i < k; i++) {
                    inFlight.remove(first + i);
                }
                allocDone.signalAll();
                lock.unlock();
            }
        }
        lock.lock();
        try {
            maybeWriteBack();
        } finally {
            lock.unlock();
        }
        return (long) k * cs;
    }

    /**
     * Writes part of one cluster that needs a metadata change: a new host cluster (unallocated,
     * compressed, shared with a snapshot) or new subclusters, filling the rest of the cluster
     * or subcluster from what it held before (copy-up from the backing file, old data, zeroes).
     */
    private void writeCluster(long off, ByteBuffer src) throws IOException {
        long gc = off >>> layout.clusterBits;
        long cStart = gc << layout.clusterBits;
        int inC = (int) (off - cStart);
        int n = src.remaining();
        long e;
        long bm;
        long host;
        boolean reuse;
        boolean fresh;
        lock.lock();
        try {
            while (inFlight.contains(gc)) {
                allocDone.awaitUninterruptibly();
            }
            TableCache.Table t = map.tableForWrite(cStart);
            int idx = layout.l2Index(cStart);
            e = map.entry(t, idx);
            bm = map.bitmap(t, idx);
            if (inPlace(e, bm, inC, n)) {
                host = (e & Layout.OFFSET_MASK) + inC;
                checkNotMetadata(host, n, "guest data");
                lock.unlock();
                try {
                    file.write(host, src);
                } finally {
                    lock.lock();
                }
                return;
            }
            boolean compressed = (e & Layout.COMPRESSED) != 0;
            long oldHost = compressed ? 0 : e & Layout.OFFSET_MASK;
            reuse = !compressed && oldHost != 0
                    && ((e & Layout.COPIED) != 0 || refcounts.get(oldHost >>> layout.clusterBits) == 1);
            if (reuse) {
                checkNotMetadata(oldHost, layout.clusterSize, "guest data");
                host = oldHost;
                fresh = false;
            } else {
                host = refcounts.allocateData();
                allocations++;
                allocatedSinceWriteBack++;
                newSinceSync.addAndGet(n);
                fresh = refcounts.lastWasFresh;
            }
            inFlight.add(gc);
        } finally {
            lock.unlock();
        }
        boolean ok = false;
        long touched = 0;
        try {
            touched = fillAndWrite(cStart, inC, src, e, bm, host, reuse, fresh);
            ok = true;
        } finally {
            lock.lock();
            try {
                if (ok) {
                    TableCache.Table t = map.tableForWrite(cStart);
                    int idx = layout.l2Index(cStart);
                    long newBm = 0;
                    if (layout.extendedL2) {
                        long alloc = (e & Layout.COMPRESSED) != 0 ? 0xffff_ffffL : bm & 0xffff_ffffL;
                        long zero = (e & Layout.COMPRESSED) != 0 ? 0 : bm >>> 32;
                        alloc |= touched;
                        zero &= ~alloc;
                        newBm = alloc | (zero << 32);
                    }
                    map.set(t, idx, host | Layout.COPIED, newBm);
                    if (!reuse) {
                        map.freeTarget(e);
                    }
                } else if (!reuse) {
                    refcounts.free(host);
                }
            } finally {
                inFlight.remove(gc);
                allocDone.signalAll();
                lock.unlock();
            }
        }
        lock.lock();
        try {
            maybeWriteBack();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Writes the new data and whatever of the old content the new host cluster needs. Returns
     * the mask of subclusters the write touched (1 for a whole cluster without subclusters).
     */
    private long fillAndWrite(long cStart, int inC, ByteBuffer src, long e, long bm, long host, boolean reuse,
                              boolean fresh) throws IOException {
        int n = src.remaining();
        int units = layout.extendedL2 ? Layout.SUBCLUSTERS : 1;
        int unit = layout.subclusterSize;
        boolean compressed = (e & Layout.COMPRESSED) != 0;
        long oldHost = compressed ? 0 : e & Layout.OFFSET_MASK;
        byte[] old = compressed ? decompress(e) : null;
        long touchedMask = 0;
        // byte ranges of the cluster to write, and the fills they need
        boolean[] write = new boolean[units];
        for (int u = 0; u < units; u++) {
            int ua = u * unit;
            int ub = ua + unit;
            boolean touched = ua < inC + n && inC < ub;
            int kind = unitKind(e, bm, u, compressed, oldHost);
            if (touched) {
                touchedMask |= 1L << u;
            }
            write[u] = touched || (!reuse && (kind == ClusterMap.DATA || kind == ClusterMap.COMPRESSED));
        }
        try (PooledBuffer pooled = BufferPool.acquire(layout.clusterSize)) {
            ByteBuffer buf = pooled.buffer();
            List<int[]> ranges = new ArrayList<>();
            for (int u = 0; u < units; u++) {
                if (!write[u]) {
                    continue;
                }
                int ua = u * unit;
                int ub = ua + unit;
                int kind = unitKind(e, bm, u, compressed, oldHost);
                int sa = Math.max(ua, inC);
                int sb = Math.min(ub, inC + n);
                boolean touched = sa < sb;
                if (touched && reuse && kind == ClusterMap.DATA) {
                    addRange(ranges, sa, sb);
                    continue;
                }
                boolean zeroFill = kind == ClusterMap.ZERO || (kind == ClusterMap.UNALLOCATED
                        && (backing == null || cStart + ua >= backing.size()));
                if (fresh && zeroFill && touched) {
                    addRange(ranges, sa, sb);
                    continue;
                }
                // fill [ua, sa) and [sb, ub) (or the whole unit if untouched) from the old content
                if (touched) {
                    fillFrom(kind, cStart, ua, sa, oldHost, old, buf);
                    fillFrom(kind, cStart, sb, ub, oldHost, old, buf);
                } else {
                    fillFrom(kind, cStart, ua, ub, oldHost, old, buf);
                }
                addRange(ranges, ua, ub);
            }
            if (ranges.size() == 1 && ranges.get(0)[0] == inC && ranges.get(0)[1] == inC + n) {
                file.write(host + inC, src);
                return touchedMask;
            }
            buf.clear();
            buf.put(inC, src, src.position(), n);
            for (int[] r : ranges) {
                file.write(host + r[0], buf.duplicate().limit(r[1]).position(r[0]));
            }
        }
        return touchedMask;
    }

    private static void addRange(List<int[]> ranges, int a, int b) {
        int[] last = ranges.isEmpty() ? null : ranges.get(ranges.size() - 1);
        if (last != null && last[1] == a) {
            last[1] = b;
        } else {
            ranges.add(new int[] {a, b});
        }
    }

    private int unitKind(long e, long bm, int u, boolean compressed, long oldHost) throws IOException {
        if (compressed) {
            return ClusterMap.COMPRESSED;
        }
        if (!layout.extendedL2) {
            if ((e & Layout.ZERO) != 0) {
                return ClusterMap.ZERO;
            }
            return oldHost != 0 ? ClusterMap.DATA : ClusterMap.UNALLOCATED;
        }
        return map.subclusterKind(bm, u, oldHost, 0);
    }

    private void fillFrom(int kind, long cStart, int a, int b, long oldHost, byte[] old, ByteBuffer buf)
            throws IOException {
        if (a >= b) {
            return;
        }
        ByteBuffer part = buf.duplicate().limit(b).position(a);
        switch (kind) {
            case ClusterMap.DATA -> file.read(oldHost + a, part);
            case ClusterMap.COMPRESSED -> part.put(old, a, b - a);
            case ClusterMap.ZERO -> fillZeroes(part);
            default -> readBacking(cStart + a, part);
        }
    }

    // ---- zeroes and discard ----

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        gate.readLock().lock();
        long ticket = guard.enter();
        try {
            beforeWrite();
            boolean unmap = RequestFlags.has(flags, RequestFlags.MAY_UNMAP);
            boolean noFallback = RequestFlags.has(flags, RequestFlags.NO_FALLBACK);
            long end = offset + length;
            long pos = offset;
            while (pos < end) {
                long inC = layout.offsetInCluster(pos);
                long n = Math.min(end - pos, layout.clusterSize - inC);
                long cStart = pos - inC;
                if (n == layout.clusterSize) {
                    long skip = zeroCluster(cStart, unmap, end);
                    if (skip < 0) {
                        zeroAsData(pos, n, noFallback);
                    } else {
                        n = Math.max(n, skip);
                    }
                } else if (layout.extendedL2) {
                    int s = layout.subclusterSize;
                    long firstFull = (inC + s - 1) / s;
                    long lastFull = (inC + n) / s - 1;
                    if (firstFull <= lastFull && zeroSubclusters(cStart, (int) firstFull, (int) lastFull)) {
                        zeroAsData(pos, firstFull * s - inC, noFallback);
                        zeroAsData(cStart + (lastFull + 1) * s, inC + n - (lastFull + 1) * s, noFallback);
                    } else {
                        zeroAsData(pos, n, noFallback);
                    }
                } else {
                    zeroAsData(pos, n, noFallback);
                }
                pos += n;
            }
        } finally {
            guard.exit(ticket);
            gate.readLock().unlock();
        }
        syncBehindAllocations();
    }

    /** Writes zeroes as data where they do not read as zero already. */
    private void zeroAsData(long offset, long length, boolean noFallback) throws IOException {
        if (length <= 0 || readsAsZero(offset, length)) {
            return;
        }
        if (noFallback) {
            throw new BlockIOException(Errno.ENOTSUP, describe + ": no efficient write-zeroes for part of a cluster");
        }
        long done = 0;
        while (done < length) {
            int c = (int) Math.min(length - done, 1 << 20);
            ByteBuffer z = BufferPool.zeroes(c);
            long pos = 0;
            while (pos < c) {
                long off = offset + done + pos;
                pos += writeInPlace(off, z.slice((int) pos, c - (int) pos));
                if (pos < c) {
                    off = offset + done + pos;
                    int k = (int) Math.min(c - pos, layout.clusterSize - layout.offsetInCluster(off));
                    writeCluster(off, z.slice((int) pos, k));
                    pos += k;
                }
            }
            done += c;
        }
    }

    private boolean readsAsZero(long offset, long length) throws IOException {
        lookupLock.lock();
        try {
            long p = 0;
            while (p < length) {
                ClusterMap.Extent e = map.lookup(map.l1, offset + p, length - p);
                boolean zero = e.kind() == ClusterMap.ZERO || (e.kind() == ClusterMap.UNALLOCATED
                        && (backing == null || offset + p >= backing.size()));
                if (!zero) {
                    return false;
                }
                p += e.length();
            }
            return true;
        } finally {
            lookupLock.unlock();
        }
    }

    /**
     * Makes one whole cluster read as zeroes through metadata. Returns -1 if that needs data
     * (version 2 over a backing file), or the bytes from cStart known to be zero already
     * (a whole L2 span without a table), at least one cluster.
     */
    private long zeroCluster(long cStart, boolean unmap, long end) throws IOException {
        long gc = cStart >>> layout.clusterBits;
        lock.lock();
        try {
            while (inFlight.contains(gc)) {
                allocDone.awaitUninterruptibly();
            }
            TableCache.Table t = map.table(map.l1, cStart);
            if (t == null && (backing == null || cStart >= backing.size())) {
                long spanEnd = (cStart / layout.l2Span() + 1) * layout.l2Span();
                return Math.max(layout.clusterSize, (Math.min(spanEnd, end) - cStart) & -(long) layout.clusterSize);
            }
            boolean v3 = header.version >= 3;
            if (!v3 && backing != null) {
                return -1;
            }
            long e = t == null ? 0 : map.entry(t, layout.l2Index(cStart));
            long bm = t == null ? 0 : map.bitmap(t, layout.l2Index(cStart));
            long host = (e & Layout.COMPRESSED) != 0 ? 0 : e & Layout.OFFSET_MASK;
            boolean keep = !unmap && (e & Layout.COPIED) != 0 && host != 0;
            long newE;
            long newBm = 0;
            if (!v3) {
                if (e == 0) {
                    return layout.clusterSize;
                }
                newE = 0;
                keep = false;
            } else if (layout.extendedL2) {
                newE = keep ? host | Layout.COPIED : 0;
                newBm = 0xffff_ffffL << 32;
            } else {
                newE = keep ? host | Layout.COPIED | Layout.ZERO : Layout.ZERO;
            }
            if (newE == e && newBm == bm) {
                return layout.clusterSize;
            }
            t = map.tableForWrite(cStart);
            e = map.entry(t, layout.l2Index(cStart));
            map.set(t, layout.l2Index(cStart), newE, newBm);
            if (!keep) {
                map.freeTarget(e);
            }
            maybeWriteBack();
            return layout.clusterSize;
        } finally {
            lock.unlock();
        }
    }

    /** Marks whole subclusters [from, to] of a cluster as zero; false if the cluster is compressed. */
    private boolean zeroSubclusters(long cStart, int from, int to) throws IOException {
        long gc = cStart >>> layout.clusterBits;
        lock.lock();
        try {
            while (inFlight.contains(gc)) {
                allocDone.awaitUninterruptibly();
            }
            TableCache.Table t = map.table(map.l1, cStart);
            if (t == null && backing == null) {
                return true;
            }
            t = map.tableForWrite(cStart);
            int idx = layout.l2Index(cStart);
            long e = map.entry(t, idx);
            if ((e & Layout.COMPRESSED) != 0) {
                return false;
            }
            long bm = map.bitmap(t, idx);
            long mask = (to == 31 ? 0xffff_ffffL : (1L << (to + 1)) - 1) & ~((1L << from) - 1);
            long alloc = bm & 0xffff_ffffL & ~mask;
            long zero = (bm >>> 32) | mask;
            map.set(t, idx, e, alloc | (zero << 32));
            maybeWriteBack();
            return true;
        } finally {
            lock.unlock();
        }
    }

    @Override
    protected void discard(long offset, long length) throws IOException {
        gate.readLock().lock();
        long ticket = guard.enter();
        try {
            beforeWrite();
            long pos = (offset + layout.clusterSize - 1) & -(long) layout.clusterSize;
            long end = (offset + length) & -(long) layout.clusterSize;
            while (pos < end) {
                pos += discardCluster(pos, end);
            }
        } finally {
            guard.exit(ticket);
            gate.readLock().unlock();
        }
    }

    private long discardCluster(long cStart, long end) throws IOException {
        long gc = cStart >>> layout.clusterBits;
        lock.lock();
        try {
            while (inFlight.contains(gc)) {
                allocDone.awaitUninterruptibly();
            }
            TableCache.Table t = map.table(map.l1, cStart);
            if (t == null) {
                long spanEnd = (cStart / layout.l2Span() + 1) * layout.l2Span();
                return Math.max(layout.clusterSize, (Math.min(spanEnd, end) - cStart) & -(long) layout.clusterSize);
            }
            int idx = layout.l2Index(cStart);
            long e = map.entry(t, idx);
            long bm = map.bitmap(t, idx);
            boolean zeroFlag = header.version >= 3 && backing != null;
            long newE = zeroFlag && !layout.extendedL2 ? Layout.ZERO : 0;
            long newBm = zeroFlag && layout.extendedL2 ? 0xffff_ffffL << 32 : 0;
            if (e == newE && bm == newBm) {
                return layout.clusterSize;
            }
            t = map.tableForWrite(cStart);
            e = map.entry(t, idx);
            map.set(t, idx, newE, newBm);
            map.freeTarget(e);
            maybeWriteBack();
            return layout.clusterSize;
        } finally {
            lock.unlock();
        }
    }

    // ---- metadata write-back ----

    /**
     * Before the first change: checks that writing is safe ({@link Qcow2Check#unsafeForWrites}:
     * else the image is marked corrupt and the write fails), clears autoclear bits, and sets the
     * dirty bit (version 3), which a clean close clears again: an image found dirty at open was
     * not closed cleanly, and is repaired then. Later calls only refuse changes to an image found
     * corrupt meanwhile.
     */
    private void beforeWrite() throws IOException {
        if (markedCorrupt) {
            throw refusedAsCorrupt();
        }
        if (written && !overlaps.stale) {
            return;
        }
        lock.lock();
        try {
            ensureOverlaps();
            if (written) {
                return;
            }
            String unsafe = Qcow2Check.unsafeForWrites(this);
            if (unsafe != null) {
                throw corruption(unsafe);
            }
            if (header.autoclear != 0) {
                header.autoclear = 0;
                file.write(Qcow2Header.OFF_AUTOCLEAR, ByteBuffer.allocate(8));
                file.flush();
            }
            if (header.version >= 3 && !header.isDirty()) {
                header.incompatible |= Qcow2Header.INCOMPAT_DIRTY;
                writeIncompatible();
                dirtySetByUs = true;
            }
            written = true;
        } finally {
            lock.unlock();
        }
    }

    /**
     * At a writable open of an image whose dirty bit is set (a crash, a kill -9, power loss):
     * as QEMU does for such images, repairs what the check repairs, which frees the clusters
     * allocated since the last flush, and logs one line with the count. The dirty bit is
     * cleared; the first write sets it again.
     */
    void repairAfterUncleanShutdown() throws IOException {
        gate.writeLock().lock();
        lock.lock();
        try {
            long leaked = Qcow2Check.repairRefcounts(this);
            // no request has run yet: what the repair freed can be used at once
            guard.releaseAll();
            header.incompatible &= ~Qcow2Header.INCOMPAT_DIRTY;
            writeIncompatible();
            LOG.warning(describe + ": was not closed cleanly; repaired its refcounts, freeing " + leaked
                    + " leaked cluster" + (leaked == 1 ? "" : "s"));
        } finally {
            lock.unlock();
            gate.writeLock().unlock();
        }
    }

    // ---- metadata overlap ----

    /** Every metadata range of the image, for {@link Overlaps#rebuild}. Under the lock. */
    private void collectMetadata(Overlaps o) throws IOException {
        int cs = layout.clusterSize;
        o.range(Overlaps.Kind.MAIN_HEADER, 0, cs);
        o.range(Overlaps.Kind.ACTIVE_L1, map.l1Offset, map.l1.length * 8L);
        o.range(Overlaps.Kind.REFCOUNT_TABLE, refcounts.tableOffset, refcounts.tableClusters << layout.clusterBits);
        for (long e : refcounts.table) {
            if ((e & Layout.REFTABLE_OFFSET_MASK) != 0) {
                o.range(Overlaps.Kind.REFCOUNT_BLOCK, e & Layout.REFTABLE_OFFSET_MASK, cs);
            }
        }
        for (long e : map.l1) {
            if ((e & Layout.OFFSET_MASK) != 0) {
                o.range(Overlaps.Kind.ACTIVE_L2, e & Layout.OFFSET_MASK, cs);
            }
        }
        long[] directory = header.bitmapDirectory();
        if (directory != null) {
            o.range(Overlaps.Kind.BITMAP_DIRECTORY, directory[0], directory[1]);
        }
        snapshots.collectMetadata(o);
    }

    /** Under the lock: builds the metadata ranges before the first change, or again after a failed rebuild. */
    private void ensureOverlaps() throws IOException {
        if (!overlapsBuilt || overlaps.stale) {
            overlaps.rebuild();
            overlapsBuilt = true;
        }
    }

    /**
     * Under the lock: after snapshot operations changed which tables exist. A failed rebuild (an
     * I/O error reading a snapshot's table) leaves the ranges marked stale: the next write
     * rebuilds them first, and fails if it cannot.
     */
    void metadataMoved() {
        if (overlapsBuilt) {
            try {
                overlaps.rebuild();
            } catch (IOException | RuntimeException e) {
                LOG.warning(describe + ": could not list the metadata after a snapshot operation: " + e.getMessage());
            }
        }
    }

    /**
     * Under the lock: fails with EIO, logs one line and marks the image corrupt (as QEMU does) if
     * {@code [offset, offset+length)} holds metadata of a kind {@code overlap-check} checks.
     */
    void checkNotMetadata(long offset, long length, String what) throws IOException {
        ensureOverlaps();
        if (!overlaps.overlap(offset, length)) {
            return;
        }
        throw corruption("preventing a write of " + what + " to host offset " + offset + " (cluster "
                + (offset >>> layout.clusterBits) + "), which holds " + overlaps.describe(offset, length));
    }

    /**
     * Under the lock: marks the image corrupt (the header's corrupt bit, as QEMU), logs one line
     * and returns the EIO to throw. From then on the node refuses every change.
     */
    BlockIOException corruption(String what) {
        String msg = describe + ": corrupt image: " + what + "; " + (header.version >= 3
                ? "the image is marked corrupt and now read-only; " : "further writes are refused; ") + repairHint();
        LOG.warning(msg);
        markCorrupt();
        return new BlockIOException(Errno.EIO, msg);
    }

    /** The command that repairs this image, for messages. */
    String repairHint() {
        return "repair it with diskstack check -r all " + describe;
    }

    boolean isMarkedCorrupt() {
        return markedCorrupt;
    }

    private void markCorrupt() {
        if (markedCorrupt) {
            return;
        }
        markedCorrupt = true;
        if (header.version >= 3 && !isReadOnly()) {
            header.incompatible |= Qcow2Header.INCOMPAT_CORRUPT;
            try {
                writeIncompatible();
            } catch (IOException e) {
                LOG.warning(describe + ": could not mark the image corrupt: " + e.getMessage());
            }
        }
    }

    private BlockIOException refusedAsCorrupt() {
        return new BlockIOException(Errno.EIO, describe + ": the image was found corrupt while in use and is read-only "
                + "now; " + repairHint());
    }

    void writeIncompatible() throws IOException {
        if (header.version < 3) {
            return;
        }
        file.write(Qcow2Header.OFF_INCOMPATIBLE, ByteBuffer.allocate(8).putLong(0, header.incompatible));
        file.flush();
    }

    private void maybeWriteBack() throws IOException {
        if (l2cache.tooManyDirty(map.l2Tables()) || refcounts.tooManyDirtyBlocks()
                || allocatedSinceWriteBack >= 2 * leakBound()) {
            flushMetadata();
        }
    }

    /**
     * New clusters after which the metadata is written back (twice that at most, besides a run
     * allocated ahead), bounding what a crash leaks: 1 GiB on a v3 image, marked dirty while
     * written and so repaired at its next writable open (here or in QEMU), 32 MiB on a v2 image,
     * whose leaks stay until a check repairs them; at least 1024 clusters.
     */
    private long leakBound() {
        long bytes = header.version >= 3 ? 1L << 30 : 32L << 20;
        return Math.max(1024, bytes >>> layout.clusterBits);
    }

    /**
     * Every {@link #SYNC_BEHIND_BYTES} of data written to new clusters, starts a sync of the file
     * on {@link #SYNC_BEHIND} (the writer goes on at once), or writes the metadata back
     * ({@link #writeBack}) on the writer's thread once {@link #leakBound} clusters are new. The sync
     * writes out the data while writers go on allocating, so the disk works alongside them
     * instead of all at once in a flush that holds them up, and the ordered write-back under the
     * lock finds little left to sync. Called with no lock held; one at a time per image.
     */
    private void syncBehindAllocations() throws IOException {
        if (newSinceSync.get() < SYNC_BEHIND_BYTES
                || !syncingBehind.compareAndSet(false, true)) {
            return;
        }
        boolean started = false;
        try {
            newSinceSync.set(0);
            if (allocatedSinceLeakCheck() >= leakBound()) {
                writeBack();
            } else {
                var task = new java.util.concurrent.FutureTask<Void>(() -> {
                    try {
                        file.flush();
                    } catch (java.nio.channels.ClosedChannelException e) {
                        // the file node was reopened under it: the reopen flushed it first
                    } catch (IOException | RuntimeException e) {
                        if (e instanceof BlockIOException b && b.errno() == Errno.ENODEV) {
                            return; // closed under it, as above
                        }
                        // the guest hears of it at its next flush
                        syncBehindFailure.set(String.valueOf(e.getMessage()));
                        LOG.warning(describe + ": a sync behind new clusters failed: " + e.getMessage());
                    } finally {
                        syncingBehind.set(false);
                    }
                }, null);
                // published before it runs: the next one cannot start before this one ends
                syncBehind = task;
                try {
                    SYNC_BEHIND.execute(task);
                } catch (RuntimeException | Error e) {
                    syncBehind = null; // never runs: nobody may wait for it
                    throw e;
                }
                started = true;
            }
        } finally {
            if (!started) {
                syncingBehind.set(false);
            }
        }
    }

    /** Waits for a sync behind allocations still running (before the image is flushed, closed or frozen). */
    private void awaitSyncBehind() {
        java.util.concurrent.Future<?> running = syncBehind;
        if (running != null) {
            io.diskstack.core.Uninterruptibly.get(running);
        }
    }

    private long allocatedSinceLeakCheck() {
        lookupLock.lock();
        try {
            return allocatedSinceWriteBack;
        } finally {
            lookupLock.unlock();
        }
    }

    /**
     * Data, new L2 tables and refcount increases, then L1 entries and L2 tables, then refcount
     * decreases: each step durable before the next. Under the lock, or under its read side and
     * the flush lock ({@link #flush}): nothing here may take the lock.
     */
    void flushMetadata() throws IOException {
        allocatedSinceWriteBack = 0;
        if (l2cache.hasDirty() || map.hasDirtyL1()) {
            file.flush();
            map.writeDirtyL1();
            l2cache.writeBack();
        }
        if (refcounts.hasDirtyBlocks()) {
            file.flush();
            refcounts.writeBlocks();
        }
        refcounts.punchFreed();
    }

    private void writeMappingTables() throws IOException {
        file.flush();
        map.writeDirtyL1();
        l2cache.writeBack();
        file.flush();
    }

    /**
     * Writes the metadata back under the read side of the metadata lock: no change can happen
     * meanwhile (the order stays as {@link #flushMetadata} makes it), but lookups, and so reads
     * and in-place writes, go on during its syncs to disk. One flush at a time.
     */
    @Override
    protected void flush() throws IOException {
        if (!written) {
            return;
        }
        awaitSyncBehind();
        String failed = syncBehindFailure.getAndSet(null);
        if (failed != null) {
            throw new BlockIOException(Errno.EIO, describe + ": a sync of new clusters failed: " + failed);
        }
        writeBack();
    }

    /** The ordered metadata write-back of {@link #flush}, without what a sync behind allocations left to report. */
    private void writeBack() throws IOException {
        flushLock.lock();
        try {
            lookupLock.lock();
            try {
                flushMetadata();
            } finally {
                lookupLock.unlock();
            }
        } finally {
            flushLock.unlock();
        }
    }

    @Override
    protected void close() throws IOException {
        if (!isReadOnly()) {
            writeBackAndMarkClean();
        }
    }

    /**
     * Names another backing file in the header, or none, in one write of the header cluster,
     * then reads through {@code edge} (or no backing). The name is relative when the backing file
     * sits beside the image, as qemu-img writes it.
     */
    @Override
    protected void changeBackingFile(BackingImage image, BlockChild edge) throws IOException {
        checkWritable();
        String name = null;
        String format = null;
        if (image != null) {
            name = image.filename();
            String own = filename();
            if (own != null && image.folder() != null
                    && image.folder().equals(java.nio.file.Path.of(own).toAbsolutePath().normalize().getParent())) {
                name = java.nio.file.Path.of(image.filename()).getFileName().toString();
            }
            format = image.format();
        }
        lock.lock();
        try {
            ByteBuffer cluster = ByteBuffer.allocate(layout.clusterSize);
            file.read(0, cluster);
            ByteBuffer changed = header.withBacking(cluster.clear(), name, format);
            file.write(0, changed);
            file.flush();
            backing = edge;
        } finally {
            lock.unlock();
        }
    }

    /** The graph will not write this image again (it became a backing file): leave it clean now. */
    @Override
    protected void releaseWritePermission() throws IOException {
        writeBackAndMarkClean();
    }

    private void writeBackAndMarkClean() throws IOException {
        awaitSyncBehind();
        if (!written) {
            return;
        }
        gate.writeLock().lock();
        lock.lock();
        try {
            refcounts.releaseReserved();
            flushMetadata();
            file.flush();
            if (dirtySetByUs) {
                header.incompatible &= ~Qcow2Header.INCOMPAT_DIRTY;
                writeIncompatible();
                dirtySetByUs = false;
            }
        } finally {
            lock.unlock();
            gate.writeLock().unlock();
        }
    }

    // ---- snapshots ----

    @Override
    public List<Snapshot> listSnapshots() {
        return snapshots.list();
    }

    @Override
    public Snapshot createSnapshot(String name) throws IOException {
        checkWritable();
        beforeWrite();
        return snapshots.create(name);
    }

    @Override
    public void deleteSnapshot(String idOrName) throws IOException {
        checkWritable();
        beforeWrite();
        snapshots.delete(idOrName);
    }

    @Override
    public void revertToSnapshot(String idOrName) throws IOException {
        checkWritable();
        beforeWrite();
        snapshots.revert(idOrName);
    }

    @Override
    public SnapshotReader openSnapshot(String idOrName) throws IOException {
        return snapshots.open(idOrName);
    }

    private void checkWritable() throws BlockIOException {
        if (isReadOnly()) {
            throw new BlockIOException(Errno.EROFS, describe + ": the image is open read-only");
        }
        if (markedCorrupt) {
            throw refusedAsCorrupt();
        }
    }

    /** Writes and flushes the whole header field range [from, from+b.remaining()). */
    void writeHeader(int at, ByteBuffer b) throws IOException {
        file.write(at, b);
        file.flush();
    }
}
