package io.diskstack.core;

/** What a driver is, in QEMU's terms: it decides where the graph may insert or skip the node. */
public enum DriverKind {
    /** Talks to storage outside the graph: a host file, later an NBD server. Has no children. */
    PROTOCOL,
    /** Interprets its children's bytes as an image format: raw, qcow2. */
    FORMAT,
    /**
     * Has one filtered child and does not change where data lives: throttle, luks, copy-on-read,
     * blkdebug. Quorum and dedup declare FILTER too: they stay above the snapshot point.
     */
    FILTER
}
