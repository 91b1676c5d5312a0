package io.diskstack.formats.dedup;

import java.io.IOException;

/**
 * Finds free physical blocks: next fit from a cursor, so that a stream of new blocks lands on
 * neighbouring blocks (one request to the data child, few seeks); the summary skips full record
 * pages without reading them.
 */
final class FreeSpace {
    private final RefCounts refs;
    private final MetadataPages pages;
    private final Geometry g;
    private long cursor = 1;

    FreeSpace(RefCounts refs, MetadataPages pages, Geometry g) {
        this.refs = refs;
        this.pages = pages;
        this.g = g;
    }

    /** A block with refcount 0 that is not busy, or 0 if the data child is full. */
    long allocate(FreedBlocks busy) throws IOException {
        long recordPages = Geometry.ceilDiv(g.dataBlocks + 1, Geometry.RECORDS_PER_PAGE);
        long p = cursor;
        for (long visited = 0; visited <= recordPages; visited++) {
            long r = p / Geometry.RECORDS_PER_PAGE;
            if (refs.usedIn(r) < refs.capacityOf(r)) {
                byte[] b = pages.get(g.recordStart + r);
                for (long q = Math.max(p, refs.firstOf(r)); q < refs.endOf(r); q++) {
                    if (Bytes.u16(b, (int) (q % Geometry.RECORDS_PER_PAGE) * Geometry.RECORD) == 0 && !busy.busy(q)) {
                        cursor = q + 1 > g.dataBlocks ? 1 : q + 1;
                        return q;
                    }
                }
            }
            p = (r + 1) * Geometry.RECORDS_PER_PAGE;
            if (p > g.dataBlocks) {
                p = 1;
            }
        }
        return 0;
    }

    void reset() {
        cursor = 1;
    }
}
