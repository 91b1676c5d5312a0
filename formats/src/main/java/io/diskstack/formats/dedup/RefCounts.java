package io.diskstack.formats.dedup;

import java.io.IOException;

/**
 * One record per physical block, 6 bytes: its refcount and the index bucket that holds its
 * fingerprint (bucket + 1; 0 if none), so freeing a block finds its index entry without reading
 * the block. Keeps the summary (records in use per record page, so a new device's zeroes are
 * right) and the used count in step.
 */
final class RefCounts {
    static final int MAX = 0xffff;

    private final MetadataPages pages;
    private final Geometry g;
    /** Records whose refcount is not 0, kept in the counters page. */
    volatile long used;

    RefCounts(MetadataPages pages, Geometry g, long used) {
        this.pages = pages;
        this.g = g;
        this.used = used;
    }

    int refcount(long p) throws IOException {
        return Bytes.u16(pages.get(recordPage(p)), offset(p));
    }

    /** The bucket + 1 that holds p's fingerprint, 0 if none. */
    long bucketTag(long p) throws IOException {
        return Bytes.u32(pages.get(recordPage(p)), offset(p) + 2);
    }

    void set(long p, int refs, long bucketTag) throws IOException {
        long page = recordPage(p);
        byte[] b = pages.get(page);
        int off = offset(p);
        int old = Bytes.u16(b, off);
        if (old == refs && Bytes.u32(b, off + 2) == bucketTag) {
            return;
        }
        Bytes.putU16(b, off, refs);
        Bytes.putU32(b, off + 2, bucketTag);
        pages.changed(page, b, off, Geometry.RECORD);
        if ((old == 0) != (refs == 0)) {
            long r = p / Geometry.RECORDS_PER_PAGE;
            setUsedIn(r, usedIn(r) + (refs == 0 ? -1 : 1));
            used += refs == 0 ? -1 : 1;
        }
    }

    /** Records in use in record page {@code r}, as the summary says. */
    int usedIn(long r) throws IOException {
        return Bytes.u16(pages.get(g.summaryStart + r / Geometry.SUMMARY_PER_PAGE), summaryOffset(r));
    }

    void setUsedIn(long r, int n) throws IOException {
        long page = g.summaryStart + r / Geometry.SUMMARY_PER_PAGE;
        byte[] b = pages.get(page);
        Bytes.putU16(b, summaryOffset(r), n);
        pages.changed(page, b, summaryOffset(r), 2);
    }

    /** Physical blocks described by record page r: [first, end). */
    long firstOf(long r) {
        return Math.max(1, r * Geometry.RECORDS_PER_PAGE);
    }

    long endOf(long r) {
        return Math.min(g.dataBlocks + 1, (r + 1) * Geometry.RECORDS_PER_PAGE);
    }

    /** Physical blocks record page r describes. */
    long capacityOf(long r) {
        return Math.max(0, endOf(r) - firstOf(r));
    }

    private long recordPage(long p) {
        return g.recordStart + p / Geometry.RECORDS_PER_PAGE;
    }

    private static int offset(long p) {
        return (int) (p % Geometry.RECORDS_PER_PAGE) * Geometry.RECORD;
    }

    private static int summaryOffset(long r) {
        return (int) (r % Geometry.SUMMARY_PER_PAGE) * 2;
    }
}
