package io.diskstack.formats.qcow2;

/**
 * The geometry of one image and the bit layout of its table entries (spec: "Cluster mapping",
 * "Extended L2 Entries", "Host cluster management"). Immutable.
 */
final class Layout {
    static final long OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    static final long COPIED = 1L << 63;
    static final long COMPRESSED = 1L << 62;
    static final long ZERO = 1L;
    /** Bits that must be 0 in an L1 entry (0-8 and 56-62). */
    static final long L1_RESERVED = 0x7f00_0000_0000_01ffL;
    /** A refcount table entry: the block's offset is bits 9-63, bits 0-8 are reserved. */
    static final long REFTABLE_OFFSET_MASK = 0xffff_ffff_ffff_fe00L;
    static final long REFTABLE_RESERVED = 0x1ffL;
    /** Bits that must be 0 in a standard L2 entry (1-8 and 56-61). */
    static final long L2_RESERVED = 0x3f00_0000_0000_01feL;
    static final int SUBCLUSTERS = 32;

    final int clusterBits;
    final int clusterSize;
    final boolean extendedL2;
    /** Bytes per L2 entry: 8, or 16 with extended L2. */
    final int l2EntrySize;
    final int l2Entries;
    final int subclusterSize;
    final int refcountOrder;
    final int refcountBits;
    final long refcountMax;
    final int refblockEntries;
    /** Compressed descriptor: the host offset is bits 0..csizeShift-1. */
    final int csizeShift;
    final long csizeMask;

    Layout(int clusterBits, boolean extendedL2, int refcountOrder) {
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.extendedL2 = extendedL2;
        this.l2EntrySize = extendedL2 ? 16 : 8;
        this.l2Entries = clusterSize / l2EntrySize;
        this.subclusterSize = extendedL2 ? clusterSize / SUBCLUSTERS : clusterSize;
        this.refcountOrder = refcountOrder;
        this.refcountBits = 1 << refcountOrder;
        this.refcountMax = refcountBits == 64 ? Long.MAX_VALUE : (1L << refcountBits) - 1;
        this.refblockEntries = (int) ((long) clusterSize * 8 / refcountBits);
        this.csizeShift = 62 - (clusterBits - 8);
        this.csizeMask = (1L << (clusterBits - 8)) - 1;
    }

    long clusterOf(long offset) {
        return offset >>> clusterBits;
    }

    long offsetInCluster(long offset) {
        return offset & (clusterSize - 1);
    }

    long alignUp(long bytes) {
        return (bytes + clusterSize - 1) & -(long) clusterSize;
    }

    long clustersFor(long bytes) {
        return (bytes + clusterSize - 1) >>> clusterBits;
    }

    /** Guest bytes one L2 table maps. */
    long l2Span() {
        return (long) l2Entries << clusterBits;
    }

    /** L1 entries needed for a virtual size. */
    long l1EntriesFor(long size) {
        return size / l2Span() + (size % l2Span() != 0 ? 1 : 0);
    }

    int l1Index(long guestOffset) {
        return (int) (guestOffset / l2Span());
    }

    int l2Index(long guestOffset) {
        return (int) ((guestOffset >>> clusterBits) & (l2Entries - 1));
    }

    // ---- compressed descriptors ----

    long compressedOffset(long entry) {
        return entry & ((1L << csizeShift) - 1);
    }

    /** Bytes the compressed data may occupy from its offset (to the end of its last sector). */
    long compressedLength(long entry) {
        long sectors = ((entry >>> csizeShift) & csizeMask) + 1;
        long offset = compressedOffset(entry);
        return sectors * 512 - (offset & 511);
    }
}
