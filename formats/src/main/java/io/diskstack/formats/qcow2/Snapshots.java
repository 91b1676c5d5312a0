package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.snapshot.PhaseTimer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * Internal snapshots of one image (spec: "Snapshots"), in QEMU's on-disk form so that
 * {@code qemu-img snapshot} and this code read each other's. Each operation holds the node's gate
 * exclusively (no request in flight) and orders its writes so that a crash at any point leaves
 * at worst leaked clusters: refcount increases before the references, references dropped before
 * the decreases.
 */
final class Snapshots {
    private static final Logger LOG = Logger.getLogger(Snapshots.class.getName());
    private final Qcow2Node node;
    private final Layout layout;
    private final List<SnapshotTable.Entry> entries;
    /** The current table's length on disk, which frees it (not recomputed: old entries can be shorter). */
    private long tableBytes;

    Snapshots(Qcow2Node node, SnapshotTable.Parsed table) {
        this.node = node;
        this.layout = node.layout;
        this.entries = new ArrayList<>(table.entries());
        this.tableBytes = table.bytes();
    }

    /**
     * The snapshot table, every snapshot's L1 table, and if {@code overlap-check} asks for them
     * their L2 tables (read from disk), for {@link Overlaps}. Under the node's lock.
     */
    void collectMetadata(Overlaps o) throws IOException {
        List<SnapshotTable.Entry> all;
        synchronized (entries) {
            if (!entries.isEmpty()) {
                o.range(Overlaps.Kind.SNAPSHOT_TABLE, node.header.snapshotsOffset, tableBytes);
            }
            all = new ArrayList<>(entries);
        }
        for (SnapshotTable.Entry e : all) {
            o.range(Overlaps.Kind.INACTIVE_L1, e.l1Offset, e.l1Size * 8);
            if (o.checks(Overlaps.Kind.INACTIVE_L2) && e.l1Size > 0) {
                for (long entry : ClusterMap.readL1(node.file, e.l1Offset, e.l1Size)) {
                    if ((entry & Layout.OFFSET_MASK) != 0) {
                        o.range(Overlaps.Kind.INACTIVE_L2, entry & Layout.OFFSET_MASK, layout.clusterSize);
                    }
                }
            }
        }
    }

    /** The entries as read or last written (the check reads them, and rewrites incomplete ones). */
    List<SnapshotTable.Entry> entries() {
        synchronized (entries) {
            return new ArrayList<>(entries);
        }
    }

    long tableBytes() {
        return tableBytes;
    }

    /**
     * Writes {@code table} as the snapshot table in a new place (each entry with at least its
     * 16 bytes of extra data) and frees the old one. Under the node's lock, with the refcounts
     * sound.
     */
    void rewriteTable(List<SnapshotTable.Entry> table) throws IOException {
        synchronized (entries) {
            entries.clear();
            entries.addAll(table);
        }
        writeTable(new ArrayList<>(table));
        node.flushMetadata();
        node.file.flush();
    }

    int count() {
        synchronized (entries) {
            return entries.size();
        }
    }

    List<InternalSnapshots.Snapshot> list() {
        synchronized (entries) {
            List<InternalSnapshots.Snapshot> out = new ArrayList<>();
            for (SnapshotTable.Entry e : entries) {
                out.add(info(e));
            }
            return out;
        }
    }

    private static InternalSnapshots.Snapshot info(SnapshotTable.Entry e) {
        return new InternalSnapshots.Snapshot(e.id, e.name, e.diskSize, e.vmStateSize,
                Instant.ofEpochSecond(e.dateSeconds, e.dateNanos), e.vmClockNanos, e.icount);
    }

    private SnapshotTable.Entry find(String idOrName) {
        synchronized (entries) {
            for (SnapshotTable.Entry e : entries) {
                if (e.id.equals(idOrName)) {
                    return e;
                }
            }
            for (SnapshotTable.Entry e : entries) {
                if (e.name.equals(idOrName)) {
                    return e;
                }
            }
        }
        throw new ConfigException(node.describe + ": no snapshot '" + idOrName + "'");
    }

    InternalSnapshots.Snapshot create(String name) throws IOException {
        if (name == null || name.isEmpty()) {
            throw new ConfigException(node.describe + ": a snapshot needs a name");
        }
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 65535) {
            throw new ConfigException(node.describe + ": snapshot name is too long");
        }
        PhaseTimer timer = new PhaseTimer(LOG, node.describe + ": snapshot '" + name + "'");
        node.gate.writeLock().lock();
        node.lock.lock();
        try {
            timer.done("locks");
            for (SnapshotTable.Entry e : entries) {
                if (e.name.equals(name) || e.id.equals(name)) {
                    throw new ConfigException(node.describe + ": a snapshot named '" + name + "' exists already");
                }
            }
            if (entries.size() >= Qcow2Header.MAX_SNAPSHOTS) {
                throw new ConfigException(node.describe + ": too many snapshots");
            }
            node.refcounts.releaseReserved();
            node.flushMetadata();
            timer.done("flush metadata");
            ClusterMap map = node.map;
            long[] l1 = map.l1;
            // 1. the snapshot's copy of the L1 table
            long l1Bytes = l1.length * 8L;
            long l1Clusters = Math.max(1, layout.clustersFor(l1Bytes));
            long snapL1 = l1.length == 0 ? 0 : node.refcounts.allocate((int) l1Clusters);
            long[] copy = new long[l1.length];
            for (int i = 0; i < l1.length; i++) {
                copy[i] = l1[i] & ~Layout.COPIED;
            }
            if (l1.length > 0) {
                node.file.write(snapL1, ClusterMap.toBytes(copy));
            }
            // 2. one more reference to everything the active L1 reaches, on disk before it is shared
            try {
                map.adjustReachable(l1, +1);
            } catch (IOException | RuntimeException ex) {
                node.refcounts.free(snapL1, l1.length == 0 ? 0 : l1Clusters);
                throw ex;
            }
            node.refcounts.writeBlocks();
            node.file.flush();
            timer.done("L1 copy and refcounts");
            // 3. nothing the active L1 reaches has refcount 1 any more; and the new table, in
            // clusters nothing points to yet: both on disk before the header points to the table
            map.fixCopiedFlags();
            node.l2cache.writeBack();
            SnapshotTable.Entry e = new SnapshotTable.Entry();
            e.l1Offset = snapL1;
            e.l1Size = l1.length;
            e.id = nextId();
            e.name = name;
            Instant t = Instant.now();
            e.dateSeconds = t.getEpochSecond();
            e.dateNanos = t.getNano();
            e.vmClockNanos = 0;
            e.vmStateSize = 0;
            e.diskSize = node.size;
            e.icount = 0;
            List<SnapshotTable.Entry> next = new ArrayList<>(entries);
            next.add(e);
            long[] table = stageTable(next);
            node.file.flush();
            timer.done("COPIED flags and table");
            // 4. the header that points to the table
            publishTable(next, table);
            timer.done("header");
            return info(e);
        } finally {
            node.metadataMoved();
            node.lock.unlock();
            node.gate.writeLock().unlock();
        }
    }

    private String nextId() {
        long max = 0;
        for (SnapshotTable.Entry e : entries) {
            try {
                max = Math.max(max, Long.parseLong(e.id));
            } catch (NumberFormatException ignored) {
                // QEMU numbers ids; others do not count
            }
        }
        return Long.toString(max + 1);
    }

    /** Writes a new snapshot table, points the header at it, frees the old one. */
    private void writeTable(List<SnapshotTable.Entry> next) throws IOException {
        long[] table = stageTable(next);
        if (table[0] != 0) {
            node.file.flush();
        }
        publishTable(next, table);
    }

    /**
     * Writes the table for {@code next} to new clusters nothing points to yet; returns its
     * offset and length. Sync it before {@link #publishTable} points the header at it.
     */
    private long[] stageTable(List<SnapshotTable.Entry> next) throws IOException {
        if (next.isEmpty()) {
            return new long[] {0, 0};
        }
        ByteBuffer b = SnapshotTable.serialize(next);
        long bytes = b.remaining();
        long offset = node.refcounts.allocate((int) layout.clustersFor(bytes));
        node.file.write(offset, b);
        return new long[] {offset, bytes};
    }

    /**
     * Points the header at the staged table (synced), then frees the old one in the refcount
     * cache: the decrease is written with the next metadata write-back, with no sync of its own
     * on a snapshot's path (a crash before it leaks the old table's clusters, nothing worse).
     */
    private void publishTable(List<SnapshotTable.Entry> next, long[] table) throws IOException {
        Qcow2Header h = node.header;
        long oldOffset = h.snapshotsOffset;
        long oldClusters = h.nbSnapshots == 0 ? 0 : layout.clustersFor(tableBytes);
        ByteBuffer hb = ByteBuffer.allocate(12).putInt(0, next.size()).putLong(4, table[0]);
        node.writeHeader(Qcow2Header.OFF_NB_SNAPSHOTS, hb);
        h.nbSnapshots = next.size();
        h.snapshotsOffset = table[0];
        tableBytes = table[1];
        synchronized (entries) {
            entries.clear();
            entries.addAll(next);
        }
        if (oldClusters > 0 && oldOffset != 0) {
            node.refcounts.free(oldOffset, oldClusters);
        }
    }

    void delete(String idOrName) throws IOException {
        node.gate.writeLock().lock();
        node.lock.lock();
        try {
            SnapshotTable.Entry victim = find(idOrName);
            node.refcounts.releaseReserved();
            node.flushMetadata();
            long[] snapL1 = ClusterMap.readL1(node.file, victim.l1Offset, victim.l1Size);
            List<SnapshotTable.Entry> next = new ArrayList<>(entries);
            next.remove(victim);
            // 1. the snapshot disappears from the image
            writeTable(next);
            // 2. then its references go
            node.map.adjustReachable(snapL1, -1);
            if (victim.l1Size > 0) {
                node.refcounts.free(victim.l1Offset, Math.max(1, layout.clustersFor(victim.l1Size * 8)));
            }
            node.file.flush();
            node.refcounts.writeBlocks();
            node.file.flush();
            // 3. clusters only the active image uses now are COPIED again
            node.map.fixCopiedFlags();
            node.flushMetadata();
        } finally {
            node.metadataMoved();
            node.lock.unlock();
            node.gate.writeLock().unlock();
        }
    }

    void revert(String idOrName) throws IOException {
        node.gate.writeLock().lock();
        node.lock.lock();
        try {
            SnapshotTable.Entry target = find(idOrName);
            if (target.l1Size < layout.l1EntriesFor(target.diskSize)) {
                throw new BlockIOException(Errno.EIO, node.describe + ": corrupt image: snapshot '" + target.name
                        + "' has an L1 table too small for its size");
            }
            node.refcounts.releaseReserved();
            node.flushMetadata();
            ClusterMap map = node.map;
            long[] snapL1 = ClusterMap.readL1(node.file, target.l1Offset, target.l1Size);
            long[] oldL1 = map.l1;
            long oldL1Offset = map.l1Offset;
            // 1. references from the new active table
            map.adjustReachable(snapL1, +1);
            node.file.flush();
            node.refcounts.writeBlocks();
            // 2. the new active L1 in a fresh place, then the header
            long clusters = Math.max(1, layout.clustersFor(snapL1.length * 8L));
            long newOffset = node.refcounts.allocate((int) clusters);
            node.file.write(newOffset, ClusterMap.toBytes(snapL1));
            node.file.flush();
            ByteBuffer hb = ByteBuffer.allocate(24).putLong(0, target.diskSize).putInt(12, snapL1.length)
                    .putLong(16, newOffset);
            hb.putInt(8, node.header.cryptMethod);
            node.writeHeader(Qcow2Header.OFF_SIZE, hb);
            node.header.size = target.diskSize;
            node.header.l1Size = snapL1.length;
            node.header.l1TableOffset = newOffset;
            map.replaceL1(snapL1, newOffset);
            node.size = target.diskSize;
            // 3. the old active table's references go
            map.adjustReachable(oldL1, -1);
            if (oldL1.length > 0) {
                node.refcounts.free(oldL1Offset, Math.max(1, layout.clustersFor(oldL1.length * 8L)));
            }
            node.file.flush();
            node.refcounts.writeBlocks();
            node.file.flush();
            // 4. COPIED flags for the new active table
            map.fixCopiedFlags();
            node.flushMetadata();
        } finally {
            node.metadataMoved();
            node.lock.unlock();
            node.gate.writeLock().unlock();
        }
    }

    InternalSnapshots.SnapshotReader open(String idOrName) throws IOException {
        node.gate.readLock().lock();
        try {
            SnapshotTable.Entry e = find(idOrName);
            long[] l1;
            node.lock.lock();
            try {
                l1 = ClusterMap.readL1(node.file, e.l1Offset, e.l1Size);
            } finally {
                node.lock.unlock();
            }
            return new Reader(e, l1);
        } finally {
            node.gate.readLock().unlock();
        }
    }

    private final class Reader implements InternalSnapshots.SnapshotReader {
        private final SnapshotTable.Entry entry;
        private final long[] l1;
        private volatile boolean closed;

        Reader(SnapshotTable.Entry entry, long[] l1) {
            this.entry = entry;
            this.l1 = l1;
        }

        @Override
        public InternalSnapshots.Snapshot snapshot() {
            return info(entry);
        }

        @Override
        public long size() {
            return entry.diskSize;
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws IOException {
            if (offset < 0 || offset + dst.remaining() > entry.diskSize) {
                throw new BlockIOException(Errno.EINVAL, node.describe + ": read past the end of snapshot '"
                        + Qcow2Header.printable(entry.name) + "'");
            }
            node.gate.readLock().lock();
            long ticket = node.guard.enter();
            try {
                boolean present;
                synchronized (entries) {
                    present = entries.contains(entry);
                }
                if (closed || !present) {
                    throw new BlockIOException(Errno.ENOENT, node.describe + ": snapshot '" + entry.name
                            + "' is gone");
                }
                node.readMapped(l1, offset, dst);
            } finally {
                node.guard.exit(ticket);
                node.gate.readLock().unlock();
            }
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
