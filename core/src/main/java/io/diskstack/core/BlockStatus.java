package io.diskstack.core;

/**
 * The state of the first {@code length} bytes of a queried range at one node
 * (QEMU's bdrv_block_status). Flags combine {@link #DATA}, {@link #ZERO}, {@link #ALLOCATED}
 * and {@link #OFFSET_VALID}.
 *
 * @param length how many bytes from the queried offset share this status, &gt; 0
 * @param flags  status bits
 * @param node   where the bytes live, for {@link BlockStatusQuery#above}: the node of a backing
 *               chain that defines them; {@code null} when asked of a single node
 * @param mappedOffset offset of the bytes in the protocol node below, if {@link #OFFSET_VALID}
 */
public record BlockStatus(long length, int flags, BlockNode node, long mappedOffset) {
    /** Reading returns data (as opposed to a known hole). */
    public static final int DATA = 1;
    /** Reading returns zeroes. */
    public static final int ZERO = 1 << 1;
    /** This node defines the content; otherwise it comes from the COW child (backing) or is zero. */
    public static final int ALLOCATED = 1 << 2;
    /** {@link #mappedOffset} is meaningful. */
    public static final int OFFSET_VALID = 1 << 3;

    public BlockStatus {
        if (length <= 0) {
            throw new IllegalArgumentException("block status length must be positive: " + length);
        }
    }

    public static BlockStatus of(long length, int flags) {
        return new BlockStatus(length, flags, null, -1);
    }

    public boolean isAllocated() {
        return (flags & ALLOCATED) != 0;
    }

    public boolean isZero() {
        return (flags & ZERO) != 0;
    }

    public boolean isData() {
        return (flags & DATA) != 0;
    }

    public BlockStatus withLength(long newLength) {
        return new BlockStatus(newLength, flags, node, mappedOffset);
    }

    public BlockStatus withNode(BlockNode where) {
        return new BlockStatus(length, flags, where, mappedOffset);
    }

    public BlockStatus withFlags(int newFlags) {
        return new BlockStatus(length, newFlags, node, mappedOffset);
    }
}
