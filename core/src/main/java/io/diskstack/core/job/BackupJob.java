package io.diskstack.core.job;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.Permissions;
import java.io.IOException;
import java.util.BitSet;
import java.util.List;

/**
 * QEMU's blockdev-backup with copy-before-write: a point-in-time copy of what a disk shows (through
 * its filters: plaintext) as of the moment the job starts, made while the disk is written. Before
 * a write changes a granule that is not copied yet, the granule's old content goes to the target
 * first; the background pass copies the rest.
 */
final class BackupJob extends BlockJob implements BlockBackend.WriteInterceptor {
    private static final int GRANULE = 64 * 1024;

    private final BlockGraph graph;
    private final BlockBackend disk;
    private final TargetImage target;
    private final long size;
    /** Granules on the target already: by the background pass or before a write. */
    private final BitSet copied = new BitSet();
    /** Granules being copied now: a write to one waits for it. */
    private final BitSet copying = new BitSet();
    private BlockGraph.Hold hold;
    private Copier copier;
    private boolean intercepting;
    private boolean finished;
    /** A copy before a guest write failed: the backup is broken, the guest's write goes on. */
    private volatile IOException broken;

    BackupJob(String id, BlockGraph graph, BlockBackend disk, TargetImage target, JobClock clock, long speed) {
        super(id, "backup", List.of(disk.rootNode(), target.top), clock, speed);
        this.graph = graph;
        this.disk = disk;
        this.target = target;
        this.size = disk.size();
    }

    /** Holds the target and starts intercepting writes: the moment of the backup. Before start. */
    void prepare() {
        try {
            hold = graph.hold(target.top, Permissions.soleWriter(true), "job '" + id() + "'");
            copier = new Copier(hold.edge());
            try (BlockGraph.Drained ignored = graph.drain(List.of(disk.rootNode()))) {
                disk.addInterceptor(this);
                intercepting = true;
            }
        } catch (RuntimeException e) {
            undo();
            throw e;
        }
    }

    @Override
    public void beforeWrite(long offset, long length, BlockBackend.DiskReader current) throws IOException {
        int first = (int) (offset / GRANULE);
        int last = (int) ((Math.min(offset + length, size) - 1) / GRANULE);
        for (int g = first; g <= last; g++) {
            if (claim(g)) {
                try {
                    copyGranule(g, current::read);
                    done(g, true);
                } catch (IOException e) {
                    // QEMU's on-cbw-error=break-snapshot: the backup fails, never the guest's write
                    broken = e;
                    synchronized (copied) {
                        finished = true;
                    }
                    done(g, false);
                }
            }
        }
    }

    /**
     * True if the caller must copy granule g now; false once it is copied (waiting while another
     * thread copies it).
     */
    private boolean claim(int g) throws IOException {
        synchronized (copied) {
            while (true) {
                if (copied.get(g) || finished) {
                    return false;
                }
                if (!copying.get(g)) {
                    copying.set(g);
                    return true;
                }
                try {
                    copied.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("backup '" + id() + "': interrupted");
                }
            }
        }
    }

    private void done(int g, boolean ok) {
        synchronized (copied) {
            copying.clear(g);
            if (ok) {
                copied.set(g);
            }
            copied.notifyAll();
        }
    }

    private void copyGranule(int g, Copier.Reader read) throws IOException {
        long offset = (long) g * GRANULE;
        int n = (int) Math.min(GRANULE, size - offset);
        copier.copy(read, offset, n);
    }

    @Override
    protected void work() throws Exception {
        setTotal(size);
        int granules = (int) ((size + GRANULE - 1) / GRANULE);
        for (int g = 0; g < granules; g++) {
            checkpoint();
            if (broken != null) {
                throw new IOException("a copy before a write failed: " + broken.getMessage(), broken);
            }
            long offset = (long) g * GRANULE;
            int n = (int) Math.min(GRANULE, size - offset);
            if (!claim(g)) {
                copied(n);
                continue;
            }
            try {
                BlockStatus st = disk.blockStatus(offset, n);
                if (st.length() >= n && (st.node() == null || st.isZero())) {
                    copier.zero(offset, n);
                } else {
                    copyGranule(g, disk::read);
                }
                done(g, true);
            } catch (IOException | RuntimeException e) {
                done(g, false);
                throw e;
            }
            copied(n);
        }
        hold.edge().flush();
        stopIntercepting();
        if (broken != null) {
            throw new IOException("a copy before a write failed: " + broken.getMessage(), broken);
        }
        hold.close();
        hold = null;
        target.close();
    }

    private void stopIntercepting() {
        if (intercepting) {
            try (BlockGraph.Drained ignored = graph.drain(List.of(disk.rootNode()))) {
                disk.removeInterceptor(this);
                intercepting = false;
            }
            synchronized (copied) {
                finished = true;
                copied.notifyAll();
            }
        }
    }

    @Override
    protected void undo() {
        stopIntercepting();
        if (hold != null) {
            hold.close();
            hold = null;
        }
        target.discard();
    }

}
