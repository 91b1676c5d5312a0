package io.diskstack.formats.dedup;

/**
 * Where everything lives on the two children (FORMAT.md): the regions of the metadata child, in
 * pages, and the number of blocks on each side. Made by {@link #forCreate} when a device is
 * created, and read back from the superblock, which {@link #check} then validates.
 */
final class Geometry {
    static final int PAGE = 4096;
    static final int MAP_ENTRY = 5;
    static final int MAP_PER_PAGE = PAGE / MAP_ENTRY;
    static final int RECORD = 6;
    static final int RECORDS_PER_PAGE = PAGE / RECORD;
    static final int SUMMARY_PER_PAGE = PAGE / 2;
    static final int INDEX_HEADER = 2;
    static final int INDEX_ENTRY = 21;
    static final int INDEX_PER_PAGE = (PAGE - INDEX_HEADER) / INDEX_ENTRY;
    /** Average index entries per bucket when the data child is full. */
    static final int INDEX_LOAD = 150;
    static final long SUPERBLOCK_A = 0;
    static final long SUPERBLOCK_B = 1;
    static final long COUNTERS = 2;
    static final long JOURNAL_START = 4;
    static final int MIN_BLOCK = 4096;
    static final int MAX_BLOCK = 65536;
    /** Block numbers are 5 bytes on disk. */
    static final long MAX_DATA_BLOCKS = (1L << 40) - 1;

    final long virtualSize;
    final int blockSize;
    final int blockShift;
    final long logicalBlocks;
    final long dataBlocks;
    final long journalStart;
    final long journalPages;
    final long mapStart;
    final long mapPages;
    final long recordStart;
    final long recordPages;
    final long summaryStart;
    final long summaryPages;
    final long indexStart;
    final long buckets;

    Geometry(long virtualSize, int blockSize, long dataBlocks, long journalStart, long journalPages, long mapStart,
             long mapPages, long recordStart, long recordPages, long summaryStart, long summaryPages, long indexStart,
             long buckets) {
        this.virtualSize = virtualSize;
        this.blockSize = blockSize;
        this.blockShift = Integer.numberOfTrailingZeros(blockSize);
        this.logicalBlocks = ceilDiv(virtualSize, blockSize);
        this.dataBlocks = dataBlocks;
        this.journalStart = journalStart;
        this.journalPages = journalPages;
        this.mapStart = mapStart;
        this.mapPages = mapPages;
        this.recordStart = recordStart;
        this.recordPages = recordPages;
        this.summaryStart = summaryStart;
        this.summaryPages = summaryPages;
        this.indexStart = indexStart;
        this.buckets = buckets;
    }

    /** The layout {@code diskstack create} writes for a disk of this size over N data blocks. */
    static Geometry forCreate(long virtualSize, int blockSize, long dataBlocks) {
        long logical = ceilDiv(virtualSize, blockSize);
        long journalBytes = Math.min(64L << 20, Math.max(16L << 20, virtualSize / 256));
        long journalPages = ceilDiv(journalBytes, PAGE);
        long mapStart = JOURNAL_START + journalPages;
        long mapPages = ceilDiv(logical, MAP_PER_PAGE);
        long recordStart = mapStart + mapPages;
        long recordPages = ceilDiv(dataBlocks + 1, RECORDS_PER_PAGE);
        long summaryStart = recordStart + recordPages;
        long summaryPages = ceilDiv(recordPages, SUMMARY_PER_PAGE);
        long indexStart = summaryStart + summaryPages;
        long buckets = Math.max(1, ceilDiv(dataBlocks, INDEX_LOAD));
        return new Geometry(virtualSize, blockSize, dataBlocks, JOURNAL_START, journalPages, mapStart, mapPages,
                recordStart, recordPages, summaryStart, summaryPages, indexStart, buckets);
    }

    /** Why this layout cannot be right (a damaged or foreign superblock), or null. */
    String check() {
        if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK || Integer.bitCount(blockSize) != 1) {
            return "block size " + blockSize + " is not a power of two from 4 KiB to 64 KiB";
        }
        if (virtualSize <= 0 || dataBlocks < 1 || dataBlocks > MAX_DATA_BLOCKS) {
            return "virtual size " + virtualSize + " or data blocks " + dataBlocks + " out of range";
        }
        if (journalStart < JOURNAL_START || journalPages < 2 || mapStart < journalStart + journalPages
                || mapPages < ceilDiv(logicalBlocks, MAP_PER_PAGE) || recordStart < mapStart + mapPages
                || recordPages < ceilDiv(dataBlocks + 1, RECORDS_PER_PAGE) || summaryStart < recordStart + recordPages
                || summaryPages < ceilDiv(recordPages, SUMMARY_PER_PAGE) || indexStart < summaryStart + summaryPages
                || buckets < 1 || buckets >= 0xffff_ffffL) {
            return "its regions overlap or are too small for " + logicalBlocks + " logical and " + dataBlocks
                    + " data blocks";
        }
        return null;
    }

    /** Pages the metadata child must have. */
    long metadataPages() {
        return indexStart + buckets;
    }

    long metadataBytes() {
        return metadataPages() * PAGE;
    }

    /** Bytes the data child must have: the header block and N blocks. */
    long dataBytes() {
        return (dataBlocks + 1) << blockShift;
    }

    long journalBytes() {
        return journalPages * PAGE;
    }

    /** True if a journal patch may change this page: counters, map, records, summary, index. */
    boolean isPatchable(long page) {
        return (page == COUNTERS || page >= mapStart) && page < metadataPages();
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
