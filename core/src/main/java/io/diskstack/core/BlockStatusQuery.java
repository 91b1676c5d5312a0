package io.diskstack.core;

import java.io.IOException;

/** Block status across a chain: through filters and down backing (COW) edges. */
public final class BlockStatusQuery {
    private BlockStatusQuery() {}

    /**
     * The status of a prefix of [offset, offset+length) as read through {@code top}: the
     * returned {@link BlockStatus#node()} is the node of the backing chain that defines the bytes,
     * or null if no node does (they read as zeroes).
     */
    public static BlockStatus above(BlockNode top, long offset, long length) throws IOException {
        return above(top, null, offset, length);
    }

    /**
     * Like {@link #above(BlockNode, long, long)}, but stops at {@code bottom} (inclusive): bytes
     * defined only below it are reported unallocated.
     */
    public static BlockStatus above(BlockNode top, BlockNode bottom, long offset, long length) throws IOException {
        BlockNode node = top;
        long n = length;
        while (true) {
            node = GraphWalk.skipFilters(node);
            BlockStatus status = RequestPath.blockStatus(node, offset, n);
            n = Math.min(n, status.length());
            if (status.isAllocated()) {
                return status.withLength(n).withNode(node);
            }
            BlockChild backing = node.cowChild();
            if (backing == null || node == bottom) {
                return BlockStatus.of(n, BlockStatus.ZERO);
            }
            long backingSize = backing.size();
            if (offset >= backingSize) {
                return BlockStatus.of(n, BlockStatus.ZERO);
            }
            n = Math.min(n, backingSize - offset);
            node = backing.node();
        }
    }

    /** True if a prefix of the range is defined by a node between top and bottom (inclusive). */
    public static boolean isAllocatedAbove(BlockNode top, BlockNode bottom, long offset, long length, long[] prefix)
            throws IOException {
        BlockStatus status = above(top, bottom, offset, length);
        prefix[0] = status.length();
        return status.node() != null;
    }
}
