package io.diskstack.core;

import java.util.EnumSet;
import java.util.Set;

/** What a child edge carries (QEMU's BdrvChildRole). */
public enum ChildRole {
    /** The child holds guest data. */
    DATA,
    /** The child holds the parent's metadata (qcow2 tables on the file node). */
    METADATA,
    /** The parent is a filter over this child: same data, same offsets. */
    FILTERED,
    /** Copy-on-write source: unallocated ranges of the parent read through to it (a backing file). */
    COW,
    /** The parent's main child, the one the parent's file name comes from. */
    PRIMARY;

    /** The {@code file} child of a format driver. */
    public static Set<ChildRole> image() {
        return EnumSet.of(DATA, METADATA, PRIMARY);
    }

    /** The child of a filter driver. */
    public static Set<ChildRole> filtered() {
        return EnumSet.of(DATA, FILTERED, PRIMARY);
    }

    /** A {@code backing} child. */
    public static Set<ChildRole> cow() {
        return EnumSet.of(COW);
    }
}
