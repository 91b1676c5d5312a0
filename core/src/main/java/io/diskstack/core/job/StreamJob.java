package io.diskstack.core.job;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.BlockStatusQuery;
import io.diskstack.core.ChildRole;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.Permissions;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.config.ConfigEdit;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * QEMU's block-stream: overlays pull in every block they get from below them (down to
 * {@code base}, exclusive, or the whole chain), through the same copy-on-read the request path
 * does for any read (serialised with the guest's writes), and then name {@code base} as their
 * backing file, or none: the images below can then be deleted. Several overlays (a quorum's
 * children) are streamed together and change their backing together.
 */
final class StreamJob extends BlockJob {
    private static final Logger LOG = Logger.getLogger(StreamJob.class.getName());

    /** One overlay to fill from below, down to {@code base} (exclusive), or the whole chain when it is null. */
    record Chain(BlockNode overlay, BlockNode base) {}

    private final BlockGraph graph;
    private final List<Chain> chains = new ArrayList<>();
    private final List<BlockGraph.Hold> holds = new ArrayList<>();
    private final List<BlockNode> reopened = new ArrayList<>();
    private final ConfigRecord record;

    StreamJob(String id, BlockGraph graph, List<Chain> chains, JobClock clock, long speed, ConfigRecord record) {
        super(id, "stream", nodesOf(chains), clock, speed);
        this.graph = graph;
        this.chains.addAll(chains);
        this.record = record;
    }

    private static List<BlockNode> nodesOf(List<Chain> chains) {
        List<BlockNode> out = new ArrayList<>();
        for (Chain c : chains) {
            for (BlockNode n = c.overlay(); n != null && n != c.base(); n = GraphWalk.backingChainNext(n)) {
                out.add(n);
            }
        }
        return out;
    }

    /** Makes read-only overlays (a later snapshot's bases) writable for the job, and holds them. Before start. */
    void prepare() throws IOException {
        try {
            for (int i = 0; i < chains.size(); i++) {
                Chain c = chains.get(i);
                if (c.overlay().isReadOnly()) {
                    BlockNode o = graph.reopen(c.overlay(), Map.of("read-only", Boolean.FALSE));
                    reopened.add(o);
                    c = new Chain(o, c.base());
                    chains.set(i, c);
                }
                holds.add(graph.hold(c.overlay(), Permissions.copyOnRead(), "job '" + id() + "'"));
            }
        } catch (IOException | RuntimeException e) {
            undo();
            throw e;
        }
    }

    @Override
    protected void work() throws Exception {
        for (Chain c : chains) {
            setTotal(total() + c.overlay().size());
        }
        for (int i = 0; i < chains.size(); i++) {
            Chain c = chains.get(i);
            BlockGraph.Hold hold = holds.get(i);
            long size = c.overlay().size();
            BlockNode bottom = lowestAbove(c);
            for (long pos = 0; pos < size; ) {
                checkpoint();
                long n = Math.min(Copier.CHUNK, size - pos);
                BlockStatus own = hold.edge().blockStatus(pos, n);
                n = Math.min(n, own.length());
                boolean fromBelow = false;
                if (!own.isAllocated() && bottom != null) {
                    BlockNode below = GraphWalk.backingChainNext(c.overlay());
                    if (below != null && pos < below.size()) {
                        BlockStatus st = BlockStatusQuery.above(below, bottom, pos, Math.min(n, below.size() - pos));
                        n = Math.min(n, st.length());
                        fromBelow = st.node() != null;
                    }
                }
                if (fromBelow) {
                    try (PooledBuffer pooled = BufferPool.acquire((int) n)) {
                        ByteBuffer buf = pooled.buffer();
                        buf.clear().limit((int) n);
                        hold.edge().read(pos, buf, RequestFlags.COPY_ON_READ);
                    }
                    pos += n;
                    copied(n);
                } else {
                    pos += n;
                    setTotal(total() - n);
                }
            }
        }
        try (BlockGraph.Drained ignored = graph.drain(new ArrayList<>(nodes()))) {
            for (BlockGraph.Hold h : holds) {
                h.edge().flush();
            }
            pivot();
        }
    }

    /** The lowest node whose data the stream copies: just above the base; null if the overlay has no backing. */
    private static BlockNode lowestAbove(Chain c) {
        BlockNode n = GraphWalk.backingChainNext(c.overlay());
        if (n == null || n == c.base()) {
            return null;
        }
        for (BlockNode next = GraphWalk.backingChainNext(n); next != null && next != c.base();
             next = GraphWalk.backingChainNext(next)) {
            n = next;
        }
        return n;
    }

    /** The old backing chains that leave with the stream: what only the streamed overlays read. */
    private List<BlockNode> leaving() {
        List<BlockNode> roots = new ArrayList<>();
        List<BlockNode> keep = new ArrayList<>();
        for (Chain c : chains) {
            keep.add(c.overlay());
            if (c.base() != null) {
                keep.add(c.base());
            }
            BlockChild cow = c.overlay().cowChild();
            if (cow != null && cow.node() != c.base() && !roots.contains(cow.node())
                    && cow.node().parents().stream().allMatch(e -> e.parent() != null && isOverlay(e.parent())
                    && e.roles().contains(ChildRole.COW))) {
                roots.add(cow.node());
            }
        }
        return roots.isEmpty() ? List.of() : Pivot.leaving(roots, keep);
    }

    /** Records the stream: each overlay's new backing (or none), the old chain and its snapshots gone. */
    void recordPivot(ConfigEdit edit) {
        for (Chain c : chains) {
            edit.set(c.overlay().nodeName(), "backing", c.base() == null ? null : c.base().nodeName());
        }
        Pivot.forget(edit, leaving());
        List<String> streamed = new ArrayList<>();
        for (var r : edit.snapshots()) {
            for (Chain c : chains) {
                if (r.overlays().contains(c.overlay().nodeName())) {
                    streamed.add(r.name());
                }
            }
        }
        edit.removeSnapshots(streamed);
    }

    private void pivot() throws IOException {
        List<BlockNode> gone = leaving();
        record.write(this::recordPivot);
        int done = 0;
        List<BlockNode> previous = new ArrayList<>();
        try {
            for (; done < chains.size(); done++) {
                Chain c = chains.get(done);
                previous.add(c.overlay().cowChild() == null ? null : c.overlay().cowChild().node());
                graph.changeBacking(c.overlay(), c.base());
            }
        } catch (IOException | RuntimeException e) {
            for (int i = done - 1; i >= 0; i--) {
                try {
                    graph.changeBacking(chains.get(i).overlay(), previous.get(i));
                } catch (IOException | RuntimeException undo) {
                    e.addSuppressed(undo);
                }
            }
            record.restore();
            throw e;
        }
        releaseHolds();
        refreeze();
        Pivot.close(graph, gone);
    }

    private boolean isOverlay(BlockNode n) {
        return chains.stream().anyMatch(c -> c.overlay() == n);
    }

    private void releaseHolds() {
        for (BlockGraph.Hold h : holds) {
            h.close();
        }
        holds.clear();
    }

    private void refreeze() {
        if (!reopened.isEmpty()) {
            try {
                graph.freeze(reopened);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "job '" + id() + "': nodes stay writable: " + e.getMessage());
            }
            reopened.clear();
        }
    }

    @Override
    protected void undo() {
        releaseHolds();
        refreeze();
    }
}
