package io.diskstack.core;

/** Bit flags carried by a request down the graph (QEMU's BdrvRequestFlags). */
public final class RequestFlags {
    /** Write through: the data is on stable storage when the request completes. */
    public static final int FUA = 1;
    /** Write-zeroes may deallocate (punch a hole) instead of writing zeroes. */
    public static final int MAY_UNMAP = 1 << 1;
    /** Write-zeroes must fail with ENOTSUP rather than fall back to writing a zero buffer. */
    public static final int NO_FALLBACK = 1 << 2;
    /**
     * Read that populates the receiving node with data it reads from below (copy-on-read).
     * The core performs the population; a driver never sees this flag on read.
     */
    public static final int COPY_ON_READ = 1 << 3;
    /** A write made by copy-on-read: it does not change guest-visible content. */
    public static final int CONTENT_UNCHANGED = 1 << 4;
    /**
     * A read that also writes what it returns to the node's copies that are behind (a quorum's
     * resync of a new child): the node's own background work sends it, serialised with every
     * other request on the node.
     */
    public static final int SYNC_COPIES = 1 << 5;

    private RequestFlags() {}

    public static boolean has(int flags, int flag) {
        return (flags & flag) != 0;
    }
}
