package io.diskstack.formats.qcow2;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.diskstack.core.BlockChild;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One-cluster metadata tables (L2 tables or refcount blocks) by host offset. Clean tables live in
 * a Caffeine cache bounded in bytes; a table with changes not yet written is pinned in a separate
 * map until the owner writes it back, so eviction never drops an update or writes one out of
 * order. The owner holds the image's metadata lock around every call: its read side for
 * {@link #get} (concurrent misses may load a table twice; both copies are equal and unchanged),
 * its write side for everything that changes a table or the pinned map, except that a flush
 * writes pinned tables back ({@link #write}, {@link #writeBack}) under the read side, one
 * flush at a time.
 */
final class TableCache {
    private final BlockChild file;
    private final int clusterSize;
    private final Cache<Long, Table> clean;
    /** Concurrent: lookups read it while a flush writes tables back under the read side. */
    private final Map<Long, Table> dirty = new ConcurrentHashMap<>();
    private final long capacityTables;
    /** The most tables ever pinned at once (tests check that it stays within the capacity). */
    int peakDirty;
    final java.util.concurrent.atomic.LongAdder hits = new java.util.concurrent.atomic.LongAdder();
    final java.util.concurrent.atomic.LongAdder misses = new java.util.concurrent.atomic.LongAdder();

    /** One table: its host offset and its bytes. */
    static final class Table {
        final long offset;
        final ByteBuffer data;
        /** For refcount blocks: an unwritten change lowers a refcount. */
        boolean pendingDecrement;

        Table(long offset, ByteBuffer data) {
            this.offset = offset;
            this.data = data;
        }
    }

    TableCache(BlockChild file, int clusterSize, long capacityBytes) {
        this.file = file;
        this.clusterSize = clusterSize;
        this.capacityTables = Math.max(2, capacityBytes / clusterSize);
        this.clean = Caffeine.newBuilder()
                .maximumSize(capacityTables)
                .executor(Runnable::run)
                .build();
    }

    long capacityBytes() {
        return capacityTables * clusterSize;
    }

    long capacityTables() {
        return capacityTables;
    }

    /** The table at {@code offset}, read from the file on a miss. */
    Table get(long offset) throws IOException {
        Table t = dirty.get(offset);
        if (t != null) {
            return t;
        }
        t = clean.getIfPresent(offset);
        if (t != null) {
            hits.increment();
            return t;
        }
        misses.increment();
        ByteBuffer data = ByteBuffer.allocate(clusterSize);
        file.read(offset, data);
        data.clear();
        t = new Table(offset, data);
        clean.put(offset, t);
        return t;
    }

    /** A new all-zero table at {@code offset}, not yet written; mark it dirty or write it. */
    Table create(long offset) {
        drop(offset);
        Table t = new Table(offset, ByteBuffer.allocate(clusterSize));
        clean.put(offset, t);
        return t;
    }

    /** Pins a changed table until {@link #writeBack}. Call right after changing it. */
    void markDirty(Table t) {
        if (!dirty.containsKey(t.offset)) {
            clean.invalidate(t.offset);
            dirty.put(t.offset, t);
            peakDirty = Math.max(peakDirty, dirty.size());
        }
    }

    /** True if a pinned table holds a refcount decrease. */
    boolean anyPendingDecrement() {
        for (Table t : dirty.values()) {
            if (t.pendingDecrement) {
                return true;
            }
        }
        return false;
    }

    boolean isDirty(Table t) {
        return dirty.get(t.offset) == t;
    }

    boolean hasDirty() {
        return !dirty.isEmpty();
    }

    int dirtyCount() {
        return dirty.size();
    }

    /**
     * True when so many tables are pinned that the owner should write them back now: they fill
     * the cache, and the image has more tables than the cache holds ({@code tablesInImage}), so
     * one that is not here yet may be needed. A cache that holds all of them (the default L2
     * cache, sized to the image) never has to give one up; writing back whenever all were dirty
     * made random writes to a small image sync every few requests.
     */
    boolean tooManyDirty(long tablesInImage) {
        return dirty.size() >= capacityTables && tablesInImage > capacityTables;
    }

    /** Writes one table now and makes it clean. */
    void write(Table t) throws IOException {
        file.write(t.offset, t.data.duplicate().clear());
        t.pendingDecrement = false;
        if (dirty.get(t.offset) == t) {
            // clean first: a concurrent lookup finds the table in one map or the other
            clean.put(t.offset, t);
            dirty.remove(t.offset, t);
        }
    }

    /** Writes every pinned table, in offset order. */
    void writeBack() throws IOException {
        List<Table> all = new ArrayList<>(dirty.values());
        all.sort((a, b) -> Long.compare(a.offset, b.offset));
        for (Table t : all) {
            write(t);
        }
    }

    /** Forgets the table at {@code offset} (its cluster was freed), written or not. */
    void drop(long offset) {
        dirty.remove(offset);
        clean.invalidate(offset);
    }

    /** Forgets everything (after a revert rewrote tables behind the cache). */
    void clear() {
        dirty.clear();
        clean.invalidateAll();
    }
}
