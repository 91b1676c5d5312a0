package io.diskstack.formats.dedup;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.Sizes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.logging.Logger;

/**
 * An open dedup device (FORMAT.md): writes are cut into blocks and fingerprinted; a block already
 * stored gains a reference, a new one goes to a free block of {@code data}; every lookup
 * structure lives on {@code metadata}, cached by {@link MetadataPages} and changed through the
 * journal.
 *
 * <p>A write runs in three steps: fingerprints and lookups (under the metadata lock, which
 * reserves the blocks it will use), the data writes of new blocks (outside it), then the map and
 * refcount changes (under it). So data reaches {@code data} before any metadata points at it, and
 * concurrent writes of the same content end up sharing one block.
 *
 * <p>Its shape: a {@link Passage#FAN_OUT} node, so snapshots and jobs below it treat both
 * children together, at one instant; core flushes it first, which commits its metadata.
 */
final class DedupNode extends BlockNode {
    private static final Logger LOG = Logger.getLogger(DedupNode.class.getName());
    /** Blocks handled per metadata step: bounds a step's journal patches. */
    private static final int CHUNK = 256;
    /** The most journal bytes one block's changes take (map, records, summary, index, each patched). */
    private static final int PATCH_BYTES_PER_BLOCK = 200;
    private static final byte ZERO = 0;
    private static final byte NEW = 1;
    private static final byte SHARED = 2;
    private static final byte SAME_AS_EARLIER = 3;

    final BlockChild metadata;
    final BlockChild data;
    final String describe;
    final String metadataName;
    final String dataName;
    private final long indexCacheBytes;
    private final long tableCacheBytes;
    /** Pages changed since the last checkpoint that trigger one. */
    private final int dirtyLimit;

    /** Lookups share its read side; every metadata change takes the write side. */
    final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    /** One commit at a time; taken before the metadata lock, never while holding it. */
    private final ReentrantLock commitLock = new ReentrantLock();
    private final ReadGuard guard = new ReadGuard();

    // the device as loaded from its children (again after a snapshot revert)
    Superblock sb;
    Geometry g;
    MetadataPages pages;
    private Journal journal;
    BlockMap map;
    RefCounts refs;
    FingerprintIndex index;
    private FreeSpace freeSpace;
    FreedBlocks freed;
    private long journalPos;
    private long nextSeq;
    private volatile long size;

    /** A commit failed: the journal's end is unknown, so nothing more is written until a reopen. */
    private volatile String broken;
    /** Metadata that breaks the format's invariants was found: changes are refused. */
    private volatile String damaged;
    private volatile boolean commitQueued;
    private java.util.concurrent.ExecutorService committer;
    private volatile long commits;
    private volatile long checkpoints;

    DedupNode(NodeOpenContext ctx, BlockChild metadata, BlockChild data, long indexCacheBytes, long tableCacheBytes) {
        super(ctx);
        this.metadata = metadata;
        this.data = data;
        this.describe = "dedup '" + ctx.nodeName() + "'";
        this.metadataName = "metadata child " + name(metadata);
        this.dataName = "data child " + name(data);
        this.indexCacheBytes = indexCacheBytes;
        this.tableCacheBytes = tableCacheBytes;
        this.dirtyLimit = (int) Math.max(16, (indexCacheBytes + tableCacheBytes) / 2 / Geometry.PAGE);
    }

    private static String name(BlockChild child) {
        String file = child.node().filename();
        return "'" + (file != null ? file : child.node().nodeName()) + "'";
    }

    /**
     * Reads the device from its children: superblock, data header, journal replay. Nothing is
     * written before all of it has been checked; a writable node then makes a checkpoint.
     */
    void load() throws IOException {
        Superblock s = Superblock.read(metadata, metadataName);
        Geometry geo = s.geometry;
        if (metadata.size() < geo.metadataBytes()) {
            throw new DedupException(metadataName + " is too small for this device: a " + Sizes.format(geo.virtualSize)
                    + " disk over " + geo.dataBlocks + " data blocks needs " + geo.metadataBytes() + " bytes of metadata, it has "
                    + metadata.size());
        }
        DataHeader.verify(data, s, dataName);
        Journal j = new Journal(metadata, geo, s.uuid, metadataName);
        boolean[] torn = new boolean[1];
        List<Journal.Transaction> replay = j.read(s.journalSeq, torn);
        MetadataPages p = new MetadataPages(metadata, geo, indexCacheBytes, tableCacheBytes);
        for (Journal.Transaction t : replay) {
            j.forEachPatch(t, p::replay);
        }
        byte[] counters = p.get(Geometry.COUNTERS);
        Damage d = this::damage;
        this.sb = s;
        this.g = geo;
        this.pages = p;
        this.journal = j;
        this.map = new BlockMap(p, geo, d, dataName, Bytes.u64(counters, 0));
        this.refs = new RefCounts(p, geo, Bytes.u64(counters, 8));
        this.index = new FingerprintIndex(p, geo, d);
        this.freeSpace = new FreeSpace(refs, p, geo);
        this.freed = new FreedBlocks();
        this.nextSeq = s.journalSeq + replay.size();
        this.journalPos = replay.isEmpty() ? 0 : replay.get(replay.size() - 1).position()
                + replay.get(replay.size() - 1).length();
        this.size = geo.virtualSize;
        this.broken = null;
        this.damaged = null;
        if (!replay.isEmpty() || torn[0]) {
            // a read-only open of a live device's snapshot (a view) replays its journal as a matter of course
            LOG.log(isReadOnly() ? java.util.logging.Level.FINE : java.util.logging.Level.INFO, () -> describe
                    + ": was not closed cleanly; replayed " + replay.size() + " journal transactions"
                    + (torn[0] ? " and ignored an incomplete last one (a commit the crash interrupted)" : ""));
        }
        if (!isReadOnly() && !replay.isEmpty()) {
            commit(true);
        }
    }

    // ---- geometry and shape ----

    @Override
    public long size() {
        return size;
    }

    @Override
    public int requestAlignment() {
        return g.blockSize;
    }

    @Override
    public Passage passage() {
        return Passage.FAN_OUT;
    }

    @Override
    public String filename() {
        return metadata.node().filename();
    }

    @Override
    public String details() {
        return "block " + Sizes.format(g.blockSize) + "  sha256  " + g.dataBlocks + " data blocks";
    }

    /** What {@code diskstack info} shows: the geometry, the device's identity and what it stores. */
    @Override
    public void describeImage(io.diskstack.core.info.ImageFacts facts) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("block-size", g.blockSize);
        d.put("hash", "sha256");
        d.put("uuid", Superblock.uuidText(sb.uuid));
        d.put("data-blocks", g.dataBlocks);
        lock.readLock().lock();
        try {
            d.put("logical-bytes", map.mapped << g.blockShift);
            d.put("physical-bytes", refs.used << g.blockShift);
        } finally {
            lock.readLock().unlock();
        }
        facts.clusterSize(g.blockSize).formatSpecific("dedup", d);
    }

    /** Both children's host storage: the metadata and the data ({@code qemu-img info}'s disk size). */
    @Override
    public long allocatedSize() throws IOException {
        long m = metadata.node().allocatedSize();
        long d = data.node().allocatedSize();
        return m < 0 || d < 0 ? -1 : m + d;
    }

    @Override
    public Map<String, ? extends Number> stats() {
        long logical = map.mapped << g.blockShift;
        long physical = refs.used << g.blockShift;
        long hits = pages.indexHits.sum();
        long lookups = hits + pages.indexMisses.sum();
        Map<String, Number> s = new LinkedHashMap<>();
        s.put("dedup.logical-bytes", logical);
        s.put("dedup.physical-bytes", physical);
        s.put("dedup.ratio", physical == 0 ? 1.0 : (double) logical / physical);
        s.put("dedup.index-cache-hit-rate", lookups == 0 ? 1.0 : (double) hits / lookups);
        s.put("dedup.index-cache-hits", hits);
        s.put("dedup.index-cache-misses", lookups - hits);
        s.put("dedup.index-full-buckets", index.fullBuckets);
        s.put("dedup.metadata-cache-bytes", pageBytesHeld());
        s.put("dedup.commits", commits);
        s.put("dedup.checkpoints", checkpoints);
        return s;
    }

    // ---- reads ----

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        int bs = g.blockSize;
        int n = dst.remaining() >> g.blockShift;
        long first = offset >> g.blockShift;
        long[] phys = new long[n];
        long ticket = guard.enter();
        try {
            lock.readLock().lock();
            try {
                for (int i = 0; i < n; i++) {
                    phys[i] = map.get(first + i);
                }
            } finally {
                lock.readLock().unlock();
            }
            int base = dst.position();
            int i = 0;
            while (i < n) {
                int j = i + 1;
                if (phys[i] == 0) {
                    while (j < n && phys[j] == 0) {
                        j++;
                    }
                    fillZeroes(dst.slice(base + i * bs, (j - i) * bs));
                } else {
                    while (j < n && phys[j] == phys[j - 1] + 1) {
                        j++;
                    }
                    data.read(phys[i] << g.blockShift, dst.slice(base + i * bs, (j - i) * bs));
                }
                i = j;
            }
            dst.position(dst.limit());
        } finally {
            guard.exit(ticket);
        }
    }

    private static final byte[] ZEROES = new byte[64 << 10];

    private static void fillZeroes(ByteBuffer b) {
        while (b.hasRemaining()) {
            b.put(ZEROES, 0, Math.min(ZEROES.length, b.remaining()));
        }
    }

    // ---- writes ----

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        int total = src.remaining() >> g.blockShift;
        int base = src.position();
        for (int done = 0; done < total; done += CHUNK) {
            int n = Math.min(CHUNK, total - done);
            writeChunk((offset >> g.blockShift) + done, src.slice(base + (done << g.blockShift), n << g.blockShift), n);
            maybeCommit();
        }
        src.position(src.limit());
    }

    private void writeChunk(long first, ByteBuffer src, int n) throws IOException {
        int bs = g.blockSize;
        byte[] kind = new byte[n];
        long[] fp = new long[2 * n];
        for (int i = 0; i < n; i++) {
            kind[i] = Fingerprint.of(src.slice(i * bs, bs), fp, 2 * i) ? NEW : ZERO;
        }
        long[] target = new long[n];
        long[] found = new long[n];
        int[] earlier = new int[n];
        long indexAtPlan;
        for (int attempt = 0; ; attempt++) {
            lock.writeLock().lock();
            try {
                checkWritable();
                indexAtPlan = index.changes;
                if (plan(kind, fp, target, found, earlier)) {
                    break;
                }
                if (attempt == 3 || freed.freedCount() == 0) {
                    throw new BlockIOException(Errno.ENOSPC, describe + ": " + dataName + " is full (" + g.dataBlocks
                            + " blocks in use)");
                }
            } finally {
                lock.writeLock().unlock();
            }
            // blocks freed since the last commit become reusable once that is on disk
            commit(false);
        }
        try {
            writeNewBlocks(src, kind, target);
        } catch (IOException | RuntimeException e) {
            lock.writeLock().lock();
            try {
                for (int i = 0; i < n; i++) {
                    if (kind[i] != ZERO) {
                        freed.release(target[i]);
                    }
                }
            } finally {
                lock.writeLock().unlock();
            }
            throw e;
        }
        lock.writeLock().lock();
        try {
            ensureJournalRoom(n);
            apply(first, kind, fp, target, found, earlier, indexAtPlan);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Decides for each block of a chunk: zero, shared with a stored block, the same as an
     * earlier block of the chunk, or new (and where). Holds every block it names, so that none is
     * freed and reused, or allocated twice, before {@link #apply}.
     *
     * @param found what the index said for each block (its block, or 0)
     * @return false, holding nothing, if the data child has no free block left
     */
    private boolean plan(byte[] kind, long[] fp, long[] target, long[] found, int[] earlier) throws IOException {
        int n = kind.length;
        for (int i = 0; i < n; i++) {
            if (kind[i] == ZERO) {
                continue;
            }
            long hi = fp[2 * i];
            long lo = fp[2 * i + 1];
            int j = earlierSame(fp, kind, i);
            if (j >= 0 && kind[j] != ZERO && refs.refcount(target[j]) + freed.holds(target[j]) < RefCounts.MAX - CHUNK) {
                kind[i] = kind[j] == NEW ? SAME_AS_EARLIER : SHARED;
                earlier[i] = j;
                found[i] = found[j];
                target[i] = target[j];
                freed.hold(target[i]);
                continue;
            }
            long p = index.lookup(hi, lo);
            found[i] = p;
            if (p != 0 && refs.refcount(p) + freed.holds(p) < RefCounts.MAX - CHUNK) {
                kind[i] = SHARED;
            } else {
                p = freeSpace.allocate(freed);
                if (p == 0) {
                    for (int k = 0; k < i; k++) {
                        if (kind[k] != ZERO) {
                            freed.release(target[k]);
                        }
                    }
                    for (int k = 0; k < kind.length; k++) {
                        kind[k] = kind[k] == ZERO ? ZERO : NEW;
                    }
                    return false;
                }
                kind[i] = NEW;
            }
            target[i] = p;
            freed.hold(p);
        }
        return true;
    }

    /**
     * The latest block of the chunk before i with its content, or -1 (a scan: cheaper than a map
     * of 256). The latest: if a full refcount made that one a new copy, i shares the copy.
     */
    private static int earlierSame(long[] fp, byte[] kind, int i) {
        for (int j = i - 1; j >= 0; j--) {
            if (kind[j] != ZERO && fp[2 * j] == fp[2 * i] && fp[2 * j + 1] == fp[2 * i + 1]) {
                return j;
            }
        }
        return -1;
    }

    /** Writes the new blocks of a chunk, runs of neighbouring blocks in one request each. */
    private void writeNewBlocks(ByteBuffer src, byte[] kind, long[] target) throws IOException {
        int bs = g.blockSize;
        int n = kind.length;
        int i = 0;
        while (i < n) {
            if (kind[i] != NEW) {
                i++;
                continue;
            }
            int j = i + 1;
            while (j < n && kind[j] == NEW && target[j] == target[j - 1] + 1) {
                j++;
            }
            data.write(target[i] << g.blockShift, src.slice(i * bs, (j - i) * bs));
            i = j;
        }
    }

    /** Points the chunk's logical blocks at their blocks, adjusting refcounts and the index. */
    /**
     * @param found       what the index said for each block when the chunk was planned
     * @param indexAtPlan {@link FingerprintIndex#changes} then: while only this step's own inserts
     *                    have changed the index since, {@code found} still holds
     */
    private void apply(long first, byte[] kind, long[] fp, long[] target, long[] found, int[] earlier,
                       long indexAtPlan) throws IOException {
        int n = kind.length;
        long[] old = new long[n];
        try {
            for (int i = 0; i < n; i++) {
                old[i] = map.get(first + i);
                if (old[i] != 0 && refs.refcount(old[i]) == 0) {
                    throw damage("logical block " + (first + i) + " maps to physical block " + old[i]
                            + ", whose refcount is 0");
                }
            }
            long[] resolved = new long[n];
            long expected = indexAtPlan;
            boolean asPlanned = true;
            for (int i = 0; i < n; i++) {
                // a freed block leaves the index: from then on, look up again
                asPlanned &= index.changes == expected;
                long p = switch (kind[i]) {
                    case ZERO -> 0;
                    case SAME_AS_EARLIER -> reference(resolved[earlier[i]]);
                    default -> settle(fp[2 * i], fp[2 * i + 1], target[i],
                            asPlanned ? found[i] : index.lookup(fp[2 * i], fp[2 * i + 1]));
                };
                expected = index.changes;
                resolved[i] = p;
                map.set(first + i, p);
                if (old[i] != 0) {
                    dereference(old[i]);
                }
            }
        } finally {
            for (int i = 0; i < n; i++) {
                if (kind[i] != ZERO) {
                    freed.release(target[i]);
                }
            }
        }
    }

    /**
     * The block a new or shared block ends up in. If another write stored the same content
     * meanwhile, that block is shared and the planned one stays free; a planned block that is
     * not in use (new, or freed meanwhile although this write held it) is taken, and indexed.
     *
     * @param q the block the index holds for this content now, or 0
     */
    private long settle(long hi, long lo, long planned, long q) throws IOException {
        if (q != 0 && q != planned) {
            // rare (a race, or a full refcount): the plan's lookup may be this step's own doing, look again
            q = index.lookup(hi, lo);
        }
        if (q != 0 && q != planned && refs.refcount(q) < RefCounts.MAX - CHUNK) {
            return reference(q);
        }
        int r = refs.refcount(planned);
        if (r != 0) {
            return reference(planned);
        }
        long tag;
        if (q == 0) {
            tag = index.insert(hi, lo, planned);
        } else {
            // q is full of references: later equal blocks share the new copy instead
            tag = index.repoint(hi, lo, q, planned);
            refs.set(q, refs.refcount(q), 0);
        }
        refs.set(planned, 1, tag);
        freed.unfreed(planned);
        return planned;
    }

    private long reference(long p) throws IOException {
        refs.set(p, refs.refcount(p) + 1, refs.bucketTag(p));
        return p;
    }

    /** Drops one reference; at zero the block leaves the index and is freed. */
    void dereference(long p) throws IOException {
        int r = refs.refcount(p);
        if (r == 0) {
            throw damage("physical block " + p + " is referenced but its refcount is 0");
        }
        long tag = refs.bucketTag(p);
        if (r > 1) {
            refs.set(p, r - 1, tag);
            return;
        }
        if (tag != 0 && !index.remove(tag - 1, p)) {
            throw damage("physical block " + p + " is not in index bucket " + (tag - 1) + ", as its record says");
        }
        refs.set(p, 0, 0);
        freed.freed(p, guard.current());
    }

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        unmap(offset, length);
    }

    @Override
    protected void discard(long offset, long length) throws IOException {
        unmap(offset, length);
    }

    /** Zeroes and discards: the blocks read as zeroes from now on and drop their references. */
    private void unmap(long offset, long length) throws IOException {
        long first = offset >> g.blockShift;
        long count = length >> g.blockShift;
        for (long done = 0; done < count; done += CHUNK) {
            int n = (int) Math.min(CHUNK, count - done);
            lock.writeLock().lock();
            try {
                checkWritable();
                ensureJournalRoom(n);
                long[] old = new long[n];
                for (int i = 0; i < n; i++) {
                    old[i] = map.get(first + done + i);
                }
                for (int i = 0; i < n; i++) {
                    if (old[i] != 0) {
                        map.set(first + done + i, 0);
                        dereference(old[i]);
                    }
                }
            } finally {
                lock.writeLock().unlock();
            }
            maybeCommit();
        }
    }

    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        long first = offset >> g.blockShift;
        long last = Math.min(g.logicalBlocks, (offset + length + g.blockSize - 1) >> g.blockShift);
        lock.readLock().lock();
        try {
            boolean mapped = map.get(first) != 0;
            long l = first + 1;
            while (l < last && l - first < 65536 && (map.get(l) != 0) == mapped) {
                l++;
            }
            long len = Math.min(length, (l << g.blockShift) - offset);
            return BlockStatus.of(len, mapped ? BlockStatus.ALLOCATED | BlockStatus.DATA : BlockStatus.ZERO);
        } finally {
            lock.readLock().unlock();
        }
    }

    // ---- commits ----

    @Override
    protected void flush() throws IOException {
        commit(false);
    }

    /** The commit flushes both children itself, data before the journal that points at it. */
    @Override
    protected boolean flushesChildren() {
        return true;
    }

    /**
     * Starts a commit when the transaction or the pinned pages have grown past their limits. Nobody
     * waits for such a commit, so it runs on the node's committer thread while writes go on; only
     * {@link #ensureJournalRoom} makes a writer wait, when they outrun it.
     */
    private void maybeCommit() {
        boolean checkpoint = pages.dirtyCount() >= dirtyLimit;
        if (!checkpoint && pages.pendingBytes() < g.journalBytes() / 4 || commitQueued || broken != null) {
            return;
        }
        commitQueued = true;
        committer().execute(() -> {
            try {
                commit(checkpoint);
            } catch (IOException | RuntimeException e) {
                // commit() has marked the node broken and logged it: the next write or flush fails with it
            } finally {
                commitQueued = false;
            }
        });
    }

    private synchronized java.util.concurrent.ExecutorService committer() {
        if (committer == null) {
            committer = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "dedup-commit-" + nodeName());
                t.setDaemon(true);
                return t;
            });
        }
        return committer;
    }

    /**
     * Under the write lock: waits (committing) until the journal has room for n more blocks'
     * changes and the pinned pages are within twice their limit.
     */
    private void ensureJournalRoom(int n) throws IOException {
        long limit = g.journalBytes() / 2 - Journal.HEADER - Geometry.PAGE;
        while (pages.pendingBytes() + (long) n * PATCH_BYTES_PER_BLOCK > limit || pages.dirtyCount() > 2 * dirtyLimit) {
            boolean checkpoint = pages.dirtyCount() > 2 * dirtyLimit;
            lock.writeLock().unlock();
            try {
                commit(checkpoint);
            } finally {
                lock.writeLock().lock();
            }
            checkWritable();
        }
    }

    /**
     * Makes every change so far durable: flush data, write the transaction, flush metadata
     * (FORMAT.md, write order); with {@code checkpoint}, also write the changed pages in place and
     * start the journal over. Then frees the blocks that may be reused, punching them out of the
     * data child.
     */
    void commit(boolean checkpoint) throws IOException {
        commitLock.lock();
        try {
            if (broken != null) {
                throw new BlockIOException(Errno.EIO, describe + ": an earlier commit failed (" + broken
                        + "); reopen the device");
            }
            MetadataPages.Capture c;
            long txn;
            lock.writeLock().lock();
            try {
                if (damaged != null) {
                    throw new BlockIOException(Errno.EIO, describe + " is damaged (" + damaged
                            + ") and writes nothing more; check it with diskstack check -f dedup");
                }
                if (pages.pendingCount() == 0 && !checkpoint) {
                    c = null;
                    txn = freed.captureTxn();
                } else {
                    if (pages.pendingCount() > 0) {
                        writeCounters();
                    }
                    c = pages.capture(checkpoint);
                    txn = freed.captureTxn();
                }
            } finally {
                lock.writeLock().unlock();
            }
            try {
                data.flush();
                if (c != null && c.hasPatches()) {
                    byte[] record = journal.encode(nextSeq, c.patches(), c.count());
                    if (journalPos + record.length > g.journalBytes()) {
                        throw new BlockIOException(Errno.EIO, describe + ": a transaction of " + record.length
                                + " bytes does not fit in the journal");
                    }
                    journal.write(journalPos, record);
                    journalPos += record.length;
                    nextSeq++;
                    commits++;
                }
                metadata.flush();
                if (c != null && checkpoint) {
                    pages.writeHome(c);
                    metadata.flush();
                    Superblock next = sb.next(nextSeq);
                    next.write(metadata);
                    metadata.flush();
                    sb = next;
                    journalPos = 0;
                    pages.doneWriting(c);
                    checkpoints++;
                }
            } catch (IOException | RuntimeException e) {
                broken = e.getMessage();
                LOG.warning(describe + ": commit failed, the device takes no more writes until it is reopened: "
                        + e.getMessage());
                throw e;
            }
            releaseFreedBlocks(txn);
            if (!checkpoint && (journalPos >= g.journalBytes() / 2 || pages.dirtyCount() >= dirtyLimit)) {
                commit(true);
            }
        } finally {
            commitLock.unlock();
        }
    }

    void writeCounters() throws IOException {
        byte[] b = pages.get(Geometry.COUNTERS);
        Bytes.putU64(b, 0, map.mapped);
        Bytes.putU64(b, 8, refs.used);
        pages.changed(Geometry.COUNTERS, b, 0, 16);
    }

    /** Blocks whose freeing is durable and that no read can reach: punched out, then reusable. */
    private void releaseFreedBlocks(long txn) throws IOException {
        List<Long> reusable;
        lock.writeLock().lock();
        try {
            freed.durable(txn);
            reusable = freed.reusable(guard.advance());
        } finally {
            lock.writeLock().unlock();
        }
        if (reusable.isEmpty()) {
            return;
        }
        try {
            int i = 0;
            while (i < reusable.size()) {
                int j = i + 1;
                while (j < reusable.size() && reusable.get(j) == reusable.get(j - 1) + 1) {
                    j++;
                }
                data.discard(reusable.get(i) << g.blockShift, (long) (j - i) << g.blockShift);
                i = j;
            }
        } catch (IOException e) {
            // only space is lost: the blocks are free in the metadata and are written before use
            LOG.fine(() -> describe + ": could not punch freed blocks out of " + dataName + ": " + e.getMessage());
        } finally {
            lock.writeLock().lock();
            try {
                freed.released(reusable);
            } finally {
                lock.writeLock().unlock();
            }
        }
    }

    private void checkWritable() throws BlockIOException {
        if (broken != null) {
            throw new BlockIOException(Errno.EIO, describe + ": an earlier commit failed (" + broken
                    + "); reopen the device");
        }
        if (damaged != null) {
            throw new BlockIOException(Errno.EIO, describe + " is damaged (" + damaged + ") and refuses changes; "
                    + "check it with diskstack check -f dedup");
        }
    }

    /** Marks the device damaged (changes are refused from now on) and says so once. */
    BlockIOException damage(String what) {
        if (damaged == null) {
            damaged = what;
            LOG.severe(describe + ": " + what + "; the device is damaged and refuses changes from now on "
                    + "(diskstack check -f dedup tells more)");
        }
        return new BlockIOException(Errno.EIO, describe + ": " + what);
    }

    // ---- lifecycle ----

    /** The children changed under the node (a snapshot revert): drop everything and read them again. */
    @Override
    protected void invalidateCache() throws IOException {
        commitLock.lock();
        lock.writeLock().lock();
        try {
            try {
                load();
            } catch (DedupException e) {
                broken = e.getMessage();
                throw new BlockIOException(Errno.EIO, describe + ": " + e.getMessage());
            }
        } finally {
            lock.writeLock().unlock();
            commitLock.unlock();
        }
    }

    @Override
    protected void close() throws IOException {
        synchronized (this) {
            if (committer != null) {
                committer.shutdown();
                try {
                    committer.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
        if (!isReadOnly() && broken == null && damaged == null) {
            commit(true);
        }
    }

    /** Heap bytes held in pages now (cached, pinned, being written), for the memory figures. */
    long pageBytesHeld() {
        return pages.pagesHeld() * Geometry.PAGE;
    }
}
