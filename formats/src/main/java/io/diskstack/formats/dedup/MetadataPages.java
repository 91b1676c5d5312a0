package io.diskstack.formats.dedup;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.diskstack.core.BlockChild;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * The metadata child's pages in memory. Unchanged pages live in two Caffeine caches bounded in
 * pages, one for the index (random access: a unique block's fingerprint lands anywhere) and one
 * for the block map, records and free summary (mostly sequential), so a stream of index misses
 * does not evict the map. A changed page is pinned until a checkpoint writes it in place, and
 * every change is also appended to the pending transaction as a patch (FORMAT.md, the journal).
 *
 * <p>The node's metadata lock guards it: {@link #get} under the read side (two readers may load
 * one page twice; both copies are equal and unchanged), everything else under the write side,
 * except {@link #writeHome}, which writes copies taken under the lock.
 */
final class MetadataPages {
    private final BlockChild metadata;
    private final Geometry g;
    private final Cache<Long, byte[]> indexCache;
    private final Cache<Long, byte[]> tableCache;
    /** Pages changed since the last checkpoint: never evicted, never written in place before it. */
    private final Map<Long, byte[]> dirty = new ConcurrentHashMap<>();
    /** Copies a checkpoint is writing in place; a miss reads them instead of the stale page. */
    private final Map<Long, byte[]> writing = new ConcurrentHashMap<>();
    /**
     * Pinned pages by page number modulo its size, so the hot path of a write (every page it
     * touches is pinned) finds them without boxing a key; a slot holds the page's current bytes
     * or -1. Set when a page is pinned, cleared when a checkpoint unpins them all.
     */
    private final long[] memoPage = new long[4096];
    private final byte[][] memoBytes = new byte[4096][];
    /** dirty.size(), which a ConcurrentHashMap counts slowly; changed under the write lock. */
    private volatile int dirtyCount;
    private byte[] pending = new byte[64 << 10];
    private int pendingLength;
    private int pendingCount;
    final LongAdder indexHits = new LongAdder();
    final LongAdder indexMisses = new LongAdder();
    final LongAdder tableHits = new LongAdder();
    final LongAdder tableMisses = new LongAdder();

    MetadataPages(BlockChild metadata, Geometry g, long indexCacheBytes, long tableCacheBytes) {
        this.metadata = metadata;
        this.g = g;
        this.indexCache = Caffeine.newBuilder().maximumSize(Math.max(16, indexCacheBytes / Geometry.PAGE))
                .executor(Runnable::run).build();
        this.tableCache = Caffeine.newBuilder().maximumSize(Math.max(16, tableCacheBytes / Geometry.PAGE))
                .executor(Runnable::run).build();
        Arrays.fill(memoPage, -1);
    }

    private Cache<Long, byte[]> cacheFor(long page) {
        return page >= g.indexStart ? indexCache : tableCache;
    }

    /** The page's current bytes; change them only under the write lock, then call {@link #changed}. */
    byte[] get(long page) throws IOException {
        boolean index = page >= g.indexStart;
        int slot = (int) (page & (memoPage.length - 1));
        if (memoPage[slot] == page) {
            if (index) {
                indexHits.increment();
            }
            return memoBytes[slot];
        }
        byte[] p = dirty.get(page);
        if (p != null) {
            if (index) {
                indexHits.increment();
            }
            return p;
        }
        Cache<Long, byte[]> cache = index ? indexCache : tableCache;
        p = cache.getIfPresent(page);
        if (p != null) {
            (index ? indexHits : tableHits).increment();
            return p;
        }
        (index ? indexMisses : tableMisses).increment();
        byte[] copy = writing.get(page);
        if (copy != null) {
            p = copy.clone();
        } else {
            p = new byte[Geometry.PAGE];
            metadata.read(page * Geometry.PAGE, ByteBuffer.wrap(p));
        }
        cache.put(page, p);
        return p;
    }

    /** Records a change of {@code length} bytes at {@code offset} of a page got from {@link #get}. */
    void changed(long page, byte[] bytes, int offset, int length) {
        pin(page, bytes);
        int need = pendingLength + 8 + length;
        if (need > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(need, pending.length * 2));
        }
        Bytes.putU32(pending, pendingLength, page);
        Bytes.putU16(pending, pendingLength + 4, offset);
        Bytes.putU16(pending, pendingLength + 6, length);
        System.arraycopy(bytes, offset, pending, pendingLength + 8, length);
        pendingLength += 8 + length;
        pendingCount++;
    }

    /** Applies a patch replayed from the journal: the page changes, no new patch is recorded. */
    void replay(long page, int offset, byte[] src, int srcOffset, int length) throws IOException {
        byte[] p = get(page);
        System.arraycopy(src, srcOffset, p, offset, length);
        pin(page, p);
    }

    private void pin(long page, byte[] bytes) {
        int slot = (int) (page & (memoPage.length - 1));
        if (memoPage[slot] == page) {
            return;
        }
        if (dirty.putIfAbsent(page, bytes) == null) {
            cacheFor(page).invalidate(page);
            dirtyCount++;
        }
        memoBytes[slot] = dirty.get(page);
        memoPage[slot] = page;
    }

    int pendingBytes() {
        return pendingLength;
    }

    int pendingCount() {
        return pendingCount;
    }

    int dirtyCount() {
        return dirtyCount;
    }

    /** What a commit takes under the lock: the pending patches and, for a checkpoint, copies of the pinned pages. */
    record Capture(byte[] patches, int count, Map<Long, byte[]> copies) {
        boolean hasPatches() {
            return count > 0;
        }
    }

    /**
     * Takes the pending patches; for a checkpoint also copies of every pinned page (which hold
     * exactly the changes of those patches and the ones before), unpinned at once: pages changed
     * after this are pinned again for the next checkpoint.
     */
    Capture capture(boolean checkpoint) {
        Capture c = new Capture(Arrays.copyOf(pending, pendingLength), pendingCount,
                checkpoint ? new TreeMap<>() : null);
        pendingLength = 0;
        pendingCount = 0;
        if (pending.length > (1 << 20)) {
            pending = new byte[64 << 10];
        }
        if (checkpoint) {
            for (Map.Entry<Long, byte[]> e : dirty.entrySet()) {
                c.copies().put(e.getKey(), e.getValue().clone());
            }
            writing.putAll(c.copies());
            for (Map.Entry<Long, byte[]> e : dirty.entrySet()) {
                cacheFor(e.getKey()).put(e.getKey(), e.getValue());
            }
            Arrays.fill(memoPage, -1);
            dirty.clear();
            dirtyCount = 0;
        }
        return c;
    }

    /** Writes a checkpoint's copies in place, in page order, runs of neighbours in one request. */
    void writeHome(Capture c) throws IOException {
        long runStart = -1;
        int runPages = 0;
        byte[] run = new byte[64 * Geometry.PAGE];
        for (Map.Entry<Long, byte[]> e : c.copies().entrySet()) {
            long page = e.getKey();
            if (runPages > 0 && (page != runStart + runPages || runPages == 64)) {
                metadata.write(runStart * Geometry.PAGE, ByteBuffer.wrap(run, 0, runPages * Geometry.PAGE));
                runPages = 0;
            }
            if (runPages == 0) {
                runStart = page;
            }
            System.arraycopy(e.getValue(), 0, run, runPages * Geometry.PAGE, Geometry.PAGE);
            runPages++;
        }
        if (runPages > 0) {
            metadata.write(runStart * Geometry.PAGE, ByteBuffer.wrap(run, 0, runPages * Geometry.PAGE));
        }
    }

    /** The checkpoint's copies are in place (and flushed): misses read the child again. */
    void doneWriting(Capture c) {
        for (Map.Entry<Long, byte[]> e : c.copies().entrySet()) {
            writing.remove(e.getKey(), e.getValue());
        }
    }

    /** Pages held in memory now, for the memory figures: cached, pinned and being written. */
    long pagesHeld() {
        return indexCache.estimatedSize() + tableCache.estimatedSize() + dirty.size() + writing.size();
    }
}
