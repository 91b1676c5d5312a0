package io.diskstack.fuse;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.snapshot.InternalSnapshots.Snapshot;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.snapshot.SnapshotTargets.Target;
import io.diskstack.core.snapshot.SnapshotTargets;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One disk's internal snapshots as the read-only files in {@code .snapshots/DISK/}. */
final class DiskSnapshots {
    private final BlockBackend backend;

    DiskSnapshots(BlockBackend backend) {
        this.backend = backend;
    }

    private List<Target> targets() {
        return SnapshotTargets.below(backend.rootNode());
    }

    /** File name → size of every snapshot, over all targets; empty if the disk has no snapshot node. */
    Map<String, Long> files() {
        Map<String, Long> files = new LinkedHashMap<>();
        List<Target> all;
        try {
            all = targets();
        } catch (ConfigException e) {
            return files;
        }
        for (Target t : all) {
            try {
                for (Snapshot s : t.snapshots().listSnapshots()) {
                    files.putIfAbsent(fileName(s), s.diskSize());
                }
            } catch (IOException e) {
                // a target that cannot list adds nothing
            }
        }
        return files;
    }

    /** A snapshot's file name: its name, or its id if the name cannot be one. */
    private static String fileName(Snapshot s) {
        try {
            SnapshotTargets.checkName(s.name());
            return s.name();
        } catch (ConfigException e) {
            return s.id();
        }
    }

    /** Opens the snapshot shown as {@code .snapshots/DISK/NAME} on every target that has it. */
    SnapshotFile open(String name) throws IOException {
        List<InternalSnapshots.SnapshotReader> readers = new ArrayList<>();
        try {
            for (Target t : targets()) {
                for (Snapshot s : t.snapshots().listSnapshots()) {
                    if (fileName(s).equals(name)) {
                        readers.add(t.snapshots().openSnapshot(s.id()));
                        break;
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            readers.forEach(InternalSnapshots.SnapshotReader::close);
            throw e;
        }
        if (readers.isEmpty()) {
            throw new BlockIOException(Errno.ENOENT, "disk '" + backend.name() + "' has no snapshot '" + name + "'");
        }
        return new SnapshotFile(readers);
    }

    /**
     * One open {@code .snapshots} file. With several targets (quorum) it reads the first that has
     * the snapshot, and the next one if that read fails.
     */
    static final class SnapshotFile implements AutoCloseable {
        private final List<InternalSnapshots.SnapshotReader> readers;

        SnapshotFile(List<InternalSnapshots.SnapshotReader> readers) {
            this.readers = readers;
        }

        long size() {
            return readers.get(0).size();
        }

        /** Fills {@code dst} with the bytes at {@code offset} (in bounds). */
        void read(long offset, ByteBuffer dst) throws IOException {
            IOException first = null;
            for (InternalSnapshots.SnapshotReader r : readers) {
                try {
                    r.read(offset, dst.duplicate());
                    return;
                } catch (IOException e) {
                    if (first == null) {
                        first = e;
                    } else {
                        first.addSuppressed(e);
                    }
                }
            }
            throw first;
        }

        @Override
        public void close() {
            readers.forEach(InternalSnapshots.SnapshotReader::close);
        }
    }
}
