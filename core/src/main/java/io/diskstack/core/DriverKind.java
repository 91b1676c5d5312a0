package io.diskstack.core;

/** What a driver is, in QEMU's terms: it decides where the graph may insert or skip the node. */
public enum DriverKind {
    /** Talks to storage outside the graph: a host file, later an NBD server. Has no children. */
    PROTOCOL,
    /** Interprets its children's bytes as an image format: raw, qcow2. */
    FORMAT,
    /**
     * Stays above the images: throttle, copy-on-read, blkdebug (plain filters: their one child is
     * FILTERED), luks (transforms its child's bytes), quorum (several children). How walks pass
     * a node is its {@linkplain BlockNode#passage() passage} and the roles of its edges, not this.
     */
    FILTER
}
