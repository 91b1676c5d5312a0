package io.diskstack.core.snapshot;

import io.diskstack.core.ConfigException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.List;

/**
 * A node that keeps internal snapshots inside its image (qcow2). The snapshot commands walk down
 * from a backend's root through filters to the first node that implements this, without knowing
 * its driver; quorum fans out to each child.
 *
 * <p>Operations that change the image's content (create, delete, revert) wait for the node's
 * in-flight requests and hold new ones back while they run.
 */
public interface InternalSnapshots {
    /**
     * One snapshot, as {@code qemu-img snapshot -l} shows it.
     *
     * @param id            the unique id string (QEMU numbers them: "1", "2", …)
     * @param name          the name (may be empty)
     * @param diskSize      the virtual disk size when it was taken
     * @param vmStateSize   bytes of saved VM state (0 for disk-only snapshots)
     * @param date          when it was taken
     * @param vmClockNanos  guest run time when it was taken
     * @param icount        record/replay instruction count, -1 if none
     */
    record Snapshot(String id, String name, long diskSize, long vmStateSize, Instant date, long vmClockNanos,
                    long icount) {}

    /** The snapshots, in the order the image stores them. */
    List<Snapshot> listSnapshots() throws IOException;

    /**
     * Takes a snapshot of the current content.
     *
     * @throws ConfigException if the name is empty or already used by a snapshot (as name or id)
     */
    Snapshot createSnapshot(String name) throws IOException;

    /** Deletes the snapshot whose id or name is {@code idOrName}. */
    void deleteSnapshot(String idOrName) throws IOException;

    /** Makes the current content that of the snapshot (which stays). The size may change. */
    void revertToSnapshot(String idOrName) throws IOException;

    /** Opens the snapshot's content for reading; close the reader when done. */
    SnapshotReader openSnapshot(String idOrName) throws IOException;

    /** The frozen content of one snapshot. Thread-safe. */
    interface SnapshotReader extends AutoCloseable {
        Snapshot snapshot();

        /** The snapshot's virtual size. */
        long size();

        /** Fills {@code dst} from its position to its limit with the bytes at {@code offset}. */
        void read(long offset, ByteBuffer dst) throws IOException;

        @Override
        void close();
    }
}
