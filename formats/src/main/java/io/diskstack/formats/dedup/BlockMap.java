package io.diskstack.formats.dedup;

import java.io.IOException;

/** Logical block → physical block, 5 bytes an entry, 0 for a block that reads as zeroes. */
final class BlockMap {
    private final MetadataPages pages;
    private final Geometry g;
    private final Damage damage;
    private final String dataName;
    /** Entries that are not 0, kept in the counters page. */
    volatile long mapped;

    BlockMap(MetadataPages pages, Geometry g, Damage damage, String dataName, long mapped) {
        this.pages = pages;
        this.g = g;
        this.damage = damage;
        this.dataName = dataName;
        this.mapped = mapped;
    }

    /** The physical block of logical block {@code l}, checked to lie on the data child. */
    long get(long l) throws IOException {
        long p = raw(l);
        if (p > g.dataBlocks) {
            throw damage.found("the block map entry of logical block " + l + " points at physical block " + p
                    + ", outside " + dataName + " (" + g.dataBlocks + " blocks)");
        }
        return p;
    }

    /** The entry as stored, unchecked (for check). */
    long raw(long l) throws IOException {
        return Bytes.u40(pages.get(g.mapStart + l / Geometry.MAP_PER_PAGE), offset(l));
    }

    void set(long l, long p) throws IOException {
        long page = g.mapStart + l / Geometry.MAP_PER_PAGE;
        byte[] b = pages.get(page);
        int off = offset(l);
        long old = Bytes.u40(b, off);
        if (old == p) {
            return;
        }
        Bytes.putU40(b, off, p);
        pages.changed(page, b, off, Geometry.MAP_ENTRY);
        if ((old == 0) != (p == 0)) {
            mapped += p == 0 ? -1 : 1;
        }
    }

    private static int offset(long l) {
        return (int) (l % Geometry.MAP_PER_PAGE) * Geometry.MAP_ENTRY;
    }
}
