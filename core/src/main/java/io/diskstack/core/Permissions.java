package io.diskstack.core;

import java.util.Collections;
import java.util.EnumSet;
import java.util.Set;

/**
 * What an edge takes on its child and what it lets the child's other users take (QEMU's perm and
 * shared_perm).
 */
public record Permissions(Set<Permission> taken, Set<Permission> shared) {
    public static final Permissions NONE_TAKEN = of(EnumSet.noneOf(Permission.class), EnumSet.allOf(Permission.class));

    public Permissions {
        taken = Collections.unmodifiableSet(taken.isEmpty() ? EnumSet.noneOf(Permission.class) : EnumSet.copyOf(taken));
        shared = Collections.unmodifiableSet(shared.isEmpty() ? EnumSet.noneOf(Permission.class) : EnumSet.copyOf(shared));
    }

    public static Permissions of(Set<Permission> taken, Set<Permission> shared) {
        return new Permissions(taken, shared);
    }

    /**
     * A backing file's reader (QEMU's default for a COW child): reads, lets others read and write
     * unchanged data, and lets them write and resize only if the overlay's own users let others
     * write it (they accept changing data).
     */
    public static Permissions reader(Permissions users) {
        EnumSet<Permission> shared = EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE_UNCHANGED,
                Permission.GRAPH_MOD);
        if (users.shared().contains(Permission.WRITE)) {
            shared.add(Permission.WRITE);
            shared.add(Permission.RESIZE);
        }
        return of(EnumSet.of(Permission.CONSISTENT_READ), shared);
    }

    /**
     * The only writer of what it uses: takes read (and write, if {@code writes}) and shares only
     * reading and unchanged writes (a format's file, a quorum's children).
     */
    public static Permissions soleWriter(boolean writes) {
        EnumSet<Permission> taken = EnumSet.of(Permission.CONSISTENT_READ);
        if (writes) {
            taken.add(Permission.WRITE);
            taken.add(Permission.WRITE_UNCHANGED);
            taken.add(Permission.RESIZE);
        }
        return of(taken, EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE_UNCHANGED, Permission.GRAPH_MOD));
    }

    /**
     * Writes only data its readers see already (a commit into a backing file, a stream's copies),
     * and lets nobody else change the node meanwhile.
     */
    public static Permissions unchangedWriter() {
        return of(EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE_UNCHANGED),
                EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE_UNCHANGED, Permission.GRAPH_MOD));
    }

    /** Reads and writes data unchanged, and lets others do anything: copy-on-read, a stream into the active image. */
    public static Permissions copyOnRead() {
        return of(EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE_UNCHANGED), EnumSet.allOf(Permission.class));
    }

    /** Reads and lets others do anything: a job's source, which may be written while it copies. */
    public static Permissions sharingReader() {
        return of(EnumSet.of(Permission.CONSISTENT_READ), EnumSet.allOf(Permission.class));
    }

    /** The same, without anything that writes: what a read-only node may take. */
    public Permissions withoutWrites() {
        EnumSet<Permission> t = taken.isEmpty() ? EnumSet.noneOf(Permission.class) : EnumSet.copyOf(taken);
        t.remove(Permission.WRITE);
        t.remove(Permission.WRITE_UNCHANGED);
        t.remove(Permission.RESIZE);
        return of(t, shared);
    }

    /** True if it takes anything that writes. */
    public boolean writes() {
        return taken.contains(Permission.WRITE) || taken.contains(Permission.WRITE_UNCHANGED)
                || taken.contains(Permission.RESIZE);
    }
}
