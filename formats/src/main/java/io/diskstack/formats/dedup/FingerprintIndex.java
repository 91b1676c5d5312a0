package io.diskstack.formats.dedup;

import java.io.IOException;

/**
 * Fingerprint → physical block, on the metadata child: a hash table of bucket pages, each an
 * unordered array of (16-byte fingerprint, 5-byte block) entries. Fingerprint (hi, lo) lives in
 * bucket {@code hi mod buckets}; a full bucket takes no more entries (the block is then stored
 * again rather than shared, which the format allows).
 */
final class FingerprintIndex {
    private final MetadataPages pages;
    private final Geometry g;
    private final Damage damage;
    /** Fingerprints not indexed because their bucket was full. */
    volatile long fullBuckets;
    /** Bumped by every insert, repoint and removal: a lookup made before still holds if it has not moved. */
    long changes;

    FingerprintIndex(MetadataPages pages, Geometry g, Damage damage) {
        this.pages = pages;
        this.g = g;
        this.damage = damage;
    }

    long bucketOf(long hi) {
        return Long.remainderUnsigned(hi, g.buckets);
    }

    /** The physical block with this fingerprint, or 0. */
    long lookup(long hi, long lo) throws IOException {
        long bucket = bucketOf(hi);
        byte[] b = pages.get(g.indexStart + bucket);
        int n = count(b, bucket);
        for (int i = 0; i < n; i++) {
            int off = Geometry.INDEX_HEADER + i * Geometry.INDEX_ENTRY;
            if (Bytes.u64(b, off) == hi && Bytes.u64(b, off + 8) == lo) {
                long p = Bytes.u40(b, off + 16);
                if (p < 1 || p > g.dataBlocks) {
                    throw damage.found("index bucket " + bucket + " points at physical block " + p
                            + ", outside the data child (" + g.dataBlocks + " blocks)");
                }
                return p;
            }
        }
        return 0;
    }

    /** Adds a fingerprint that is not in the index; returns the bucket + 1, or 0 if the bucket is full. */
    long insert(long hi, long lo, long p) throws IOException {
        long bucket = bucketOf(hi);
        long page = g.indexStart + bucket;
        byte[] b = pages.get(page);
        int n = count(b, bucket);
        if (n == Geometry.INDEX_PER_PAGE) {
            fullBuckets++;
            return 0;
        }
        int off = Geometry.INDEX_HEADER + n * Geometry.INDEX_ENTRY;
        Bytes.putU64(b, off, hi);
        Bytes.putU64(b, off + 8, lo);
        Bytes.putU40(b, off + 16, p);
        pages.changed(page, b, off, Geometry.INDEX_ENTRY);
        Bytes.putU16(b, 0, n + 1);
        pages.changed(page, b, 0, 2);
        changes++;
        return bucket + 1;
    }

    /** Points the entry of this fingerprint, which names {@code from}, at {@code to}; returns the bucket + 1. */
    long repoint(long hi, long lo, long from, long to) throws IOException {
        long bucket = bucketOf(hi);
        long page = g.indexStart + bucket;
        byte[] b = pages.get(page);
        int i = find(b, count(b, bucket), from);
        if (i < 0) {
            throw damage.found("index bucket " + bucket + " lost its entry for physical block " + from);
        }
        int off = Geometry.INDEX_HEADER + i * Geometry.INDEX_ENTRY + 16;
        Bytes.putU40(b, off, to);
        pages.changed(page, b, off, 5);
        changes++;
        return bucket + 1;
    }

    /** Removes the entry that names block p from the bucket; false if there is none. */
    boolean remove(long bucket, long p) throws IOException {
        long page = g.indexStart + bucket;
        byte[] b = pages.get(page);
        int n = count(b, bucket);
        int i = find(b, n, p);
        if (i < 0) {
            return false;
        }
        if (i != n - 1) {
            int last = Geometry.INDEX_HEADER + (n - 1) * Geometry.INDEX_ENTRY;
            int off = Geometry.INDEX_HEADER + i * Geometry.INDEX_ENTRY;
            System.arraycopy(b, last, b, off, Geometry.INDEX_ENTRY);
            pages.changed(page, b, off, Geometry.INDEX_ENTRY);
        }
        Bytes.putU16(b, 0, n - 1);
        pages.changed(page, b, 0, 2);
        changes++;
        return true;
    }

    private int count(byte[] b, long bucket) throws IOException {
        int n = Bytes.u16(b, 0);
        if (n > Geometry.INDEX_PER_PAGE) {
            throw damage.found("index bucket " + bucket + " says it holds " + n + " entries (at most "
                    + Geometry.INDEX_PER_PAGE + ")");
        }
        return n;
    }

    private static int find(byte[] b, int n, long p) {
        for (int i = 0; i < n; i++) {
            if (Bytes.u40(b, Geometry.INDEX_HEADER + i * Geometry.INDEX_ENTRY + 16) == p) {
                return i;
            }
        }
        return -1;
    }
}
