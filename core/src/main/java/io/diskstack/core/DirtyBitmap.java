package io.diskstack.core;

import java.util.BitSet;

/**
 * The regions of a node written since a point in time, at a granularity (QEMU's dirty bitmap).
 * The request path marks every write, write-zeroes and discard that reaches the node, when it
 * ends (also when it fails: the bytes may have changed); a job that copies the node clears a
 * region before it reads it, so a write that ends after the read marks it again.
 */
public final class DirtyBitmap {
    private final int granularity;
    private final int shift;
    private final BitSet bits = new BitSet();
    private long count;

    /** @param granularity bytes per bit, a power of two */
    public DirtyBitmap(int granularity) {
        if (Integer.bitCount(granularity) != 1) {
            throw new IllegalArgumentException("granularity must be a power of two: " + granularity);
        }
        this.granularity = granularity;
        this.shift = Integer.numberOfTrailingZeros(granularity);
    }

    public int granularity() {
        return granularity;
    }

    /** Marks every granule that [offset, offset+length) touches. */
    public synchronized void mark(long offset, long length) {
        if (length <= 0) {
            return;
        }
        int from = Math.toIntExact(offset >>> shift);
        int to = Math.toIntExact((offset + length - 1) >>> shift) + 1;
        count += (to - from) - bits.get(from, to).cardinality();
        bits.set(from, to);
    }

    /** Marks the whole range [0, size). */
    public synchronized void markAll(long size) {
        mark(0, size);
    }

    /**
     * Clears and returns the first dirty run at or after {@code offset}, at most {@code maxLength}
     * bytes and aligned to the granularity: {@code {start, length}}, or null if nothing is dirty.
     */
    public synchronized long[] takeNext(long offset, long maxLength) {
        int from = bits.nextSetBit(Math.toIntExact(offset >>> shift));
        if (from < 0) {
            from = bits.nextSetBit(0);
            if (from < 0) {
                return null;
            }
        }
        int limit = from + Math.max(1, (int) (maxLength >>> shift));
        int end = bits.nextClearBit(from);
        end = Math.min(end, limit);
        bits.clear(from, end);
        count -= end - from;
        return new long[] {(long) from << shift, (long) (end - from) << shift};
    }

    /** Dirty bytes now (granules × granularity). */
    public synchronized long dirtyBytes() {
        return count << shift;
    }
}
