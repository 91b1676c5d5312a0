package io.diskstack.core.job;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DirtyBitmap;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * A job that brings targets in sync with sources while the sources are written, then pivots
 * (QEMU's mirror; an active commit is a mirror into the base): a bulk pass copies what
 * {@link #plan} says, a dirty bitmap on each source catches what writes change meanwhile, and
 * once nothing is dirty the job is {@link io.diskstack.core.job.JobStatus#READY}. On complete
 * (asked, or at once with {@code autoComplete}) it drains the disks, copies the last dirty
 * bytes, flushes the targets and makes its graph change ({@link #pivot()}).
 */
abstract class SyncJob extends BlockJob {
    /** One source and its target: a quorum's commit has one lane per child. */
    static final class Lane {
        final BlockNode source;
        final BlockChild sourceEdge;
        final BlockChild targetEdge;
        final DirtyBitmap dirty;
        final Copier copier;

        Lane(BlockNode source, BlockChild sourceEdge, BlockChild targetEdge, int granularity) {
            this.source = source;
            this.sourceEdge = sourceEdge;
            this.targetEdge = targetEdge;
            this.dirty = new DirtyBitmap(granularity);
            this.copier = new Copier(targetEdge);
        }
    }

    protected final BlockGraph graph;
    protected final List<Lane> lanes = new ArrayList<>();
    private final boolean autoComplete;
    private boolean tracking;

    SyncJob(String id, String type, List<BlockNode> nodes, JobClock clock, long speed, BlockGraph graph,
            boolean autoComplete) {
        super(id, type, nodes, clock, speed);
        this.graph = graph;
        this.autoComplete = autoComplete;
    }

    /**
     * What the bulk pass does with a prefix of [offset, offset+length) of a lane's source:
     * returns the prefix's length, negative if it needs no copy, and says by {@code zero[0]} that
     * it reads as zeroes.
     */
    protected abstract long plan(Lane lane, long offset, long length, boolean[] zero) throws IOException;

    /** The graph change, drained, once every target holds what its source shows. */
    protected abstract void pivot() throws IOException;

    /** The nodes whose disks the pivot drains. */
    protected abstract List<BlockNode> drainedNodes();

    @Override
    protected final void work() throws Exception {
        for (Lane l : lanes) {
            graph.addDirtyBitmap(l.source, l.dirty);
        }
        tracking = true;
        for (Lane l : lanes) {
            setTotal(total() + l.source.size());
        }
        try (CopyPipeline pipeline = new CopyPipeline(id(), CopyPipeline.DEPTH)) {
            bulkCopy(pipeline);
            pipeline.drain();
        }
        while (true) {
            if (copyDirty()) {
                continue;
            }
            ready();
            if (autoComplete || completeAsked()) {
                try (BlockGraph.Drained ignored = graph.drain(drainedNodes())) {
                    while (copyDirty()) {
                        // the last writes before the drain
                    }
                    for (Lane l : lanes) {
                        l.targetEdge.flush();
                    }
                    stopTracking();
                    pivot();
                }
                return;
            }
            idle();
        }
    }

    /**
     * The bulk pass: each lane's source from start to end, as {@link #plan} says, several chunks
     * at once. A write that lands during a chunk's copy is in the dirty bitmap and copied again
     * after; the dirty pass is serial, as two copies of one range must not race.
     */
    private void bulkCopy(CopyPipeline pipeline) throws Exception {
        boolean[] zero = new boolean[1];
        for (Lane l : lanes) {
            long size = l.source.size();
            for (long pos = 0; pos < size; ) {
                checkpoint();
                zero[0] = false;
                long n = plan(l, pos, Math.min(Copier.CHUNK, size - pos), zero);
                if (n < 0) {
                    setTotal(total() + n);
                    pos -= n;
                    continue;
                }
                long at = pos;
                if (zero[0]) {
                    pipeline.submit(() -> {
                        l.copier.zero(at, n);
                        count(n);
                    });
                } else {
                    pipeline.submit(() -> {
                        l.copier.copy(l.sourceEdge::read, at, (int) n);
                        count(n);
                    });
                }
                pos += n;
                pace(n);
            }
        }
    }

    /** Copies one dirty piece of some lane; false if nothing is dirty. */
    private boolean copyDirty() throws Exception {
        for (Lane l : lanes) {
            long[] run = l.dirty.takeNext(0, Copier.CHUNK);
            if (run != null) {
                long end = Math.min(run[0] + run[1], l.source.size());
                if (end > run[0]) {
                    addTotal(end - run[0]);
                    l.copier.copy(l.sourceEdge::read, run[0], (int) (end - run[0]));
                    copied(end - run[0]);
                }
                return true;
            }
        }
        return false;
    }

    protected final void stopTracking() {
        if (tracking) {
            for (Lane l : lanes) {
                graph.removeDirtyBitmap(l.source, l.dirty);
            }
            tracking = false;
        }
    }

    @Override
    protected void undo() {
        stopTracking();
    }
}
