package io.diskstack.core.job;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.BlockStatusQuery;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.Permissions;
import io.diskstack.core.config.ConfigEdit;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * QEMU's block-commit: the data written into overlays since a base was frozen is merged down into
 * the base, and the overlays leave the graph. For an active commit (the top is what the disk's
 * parents use now) it is a mirror into the base that pivots when in sync; for an intermediate one
 * the overlay above the top is given the base as its backing file. Several chains (a quorum's
 * children) are committed together and pivot together, or none does.
 */
final class CommitJob extends SyncJob {
    private static final Logger LOG = Logger.getLogger(CommitJob.class.getName());

    /** One chain: data from {@code top} down to just above {@code base} goes into {@code base}. */
    record Chain(BlockNode top, BlockNode base, BlockNode above) {
        /** {@code above}: the node whose backing is {@code top} for an intermediate commit, null for an active one. */
        boolean active() {
            return above == null;
        }

        /** The lowest node above the base: block status from top stops there. */
        BlockNode lowest() {
            BlockNode n = top;
            for (BlockNode next = GraphWalk.backingChainNext(n); next != null && next != base;
                 next = GraphWalk.backingChainNext(next)) {
                n = next;
            }
            return n;
        }
    }

    private final List<Chain> chains = new ArrayList<>();
    private final List<BlockGraph.Hold> holds = new ArrayList<>();
    private final ConfigRecord record;
    private final boolean deleteFiles;
    private final List<BlockNode> reopenedBases = new ArrayList<>();
    /** Overlays above an intermediate commit's top, made writable to take a new backing file name. */
    private final List<BlockNode> reopenedAbove = new ArrayList<>();

    CommitJob(String id, BlockGraph graph, List<Chain> chains, JobClock clock, long speed, ConfigRecord record,
              boolean deleteFiles, boolean autoComplete) {
        super(id, "commit", nodesOf(chains), clock, speed, graph, autoComplete);
        this.chains.addAll(chains);
        this.record = record;
        this.deleteFiles = deleteFiles;
    }

    private static List<BlockNode> nodesOf(List<Chain> chains) {
        List<BlockNode> out = new ArrayList<>();
        for (Chain c : chains) {
            for (BlockNode n = c.top(); n != null && n != c.base(); n = GraphWalk.backingChainNext(n)) {
                out.add(n);
            }
            out.add(c.base());
        }
        return out;
    }

    /** Makes each base writable for the job only, and holds what the job reads and writes. Before start. */
    void prepare() throws IOException {
        try {
            for (int i = 0; i < chains.size(); i++) {
                Chain c = chains.get(i);
                BlockNode base = c.base();
                if (base.isReadOnly()) {
                    base = graph.reopen(base, Map.of("read-only", Boolean.FALSE));
                    reopenedBases.add(base);
                    c = new Chain(c.top(), base, c.above());
                    chains.set(i, c);
                }
                if (!c.active() && c.above().isReadOnly()) {
                    BlockNode above = graph.reopen(c.above(), Map.of("read-only", Boolean.FALSE));
                    reopenedAbove.add(above);
                    c = new Chain(c.top(), c.base(), above);
                    chains.set(i, c);
                }
                BlockGraph.Hold read = graph.hold(c.top(), Permissions.sharingReader(), "job '" + id() + "'");
                holds.add(read);
                BlockGraph.Hold write = graph.hold(base, Permissions.unchangedWriter(), "job '" + id() + "'");
                holds.add(write);
                lanes.add(new Lane(c.top(), read.edge(), write.edge(), Math.max(65536, c.top().clusterSize())));
            }
        } catch (IOException | RuntimeException e) {
            undo();
            throw e;
        }
    }

    @Override
    protected long plan(Lane lane, long offset, long length, boolean[] zero) throws IOException {
        Chain c = chains.get(lanes.indexOf(lane));
        BlockStatus st = BlockStatusQuery.above(c.top(), c.lowest(), offset, length);
        return st.node() == null ? -st.length() : st.length();
    }

    @Override
    protected List<BlockNode> drainedNodes() {
        List<BlockNode> out = new ArrayList<>();
        for (Chain c : chains) {
            out.add(c.top());
            out.add(c.base());
        }
        return out;
    }

    /** The edges that point at each chain's top now and will point at its base. */
    private List<List<BlockChild>> users() {
        List<List<BlockChild>> users = new ArrayList<>();
        for (Chain c : chains) {
            users.add(c.active() ? c.top().parents().stream().filter(e -> !holdsEdge(e)).toList()
                    : List.of(c.above().cowChild()));
        }
        return users;
    }

    private List<BlockNode> leaving() {
        return Pivot.leaving(chains.stream().map(Chain::top).toList(), chains.stream().map(Chain::base).toList());
    }

    /** Records the pivot: references to each top name its base, which is writable; the tops and what only they used go. */
    void recordPivot(ConfigEdit edit) {
        List<List<BlockChild>> users = users();
        for (int i = 0; i < chains.size(); i++) {
            Chain c = chains.get(i);
            String top = c.top().nodeName();
            String base = c.base().nodeName();
            for (BlockChild e : users.get(i)) {
                if (e.parent() != null) {
                    edit.repoint(e.parent().nodeName(), e.name(), top, base);
                }
            }
            edit.repointExports(top, base);
            edit.remove(base, "read-only");
        }
        Pivot.forget(edit, leaving());
    }

    @Override
    protected void pivot() throws IOException {
        List<List<BlockChild>> users = users();
        List<BlockNode> leaving = leaving();
        record.write(this::recordPivot);
        releaseHolds();
        int done = 0;
        try {
            for (; done < chains.size(); done++) {
                Chain c = chains.get(done);
                if (c.active()) {
                    graph.repoint(users.get(done), c.base());
                } else {
                    graph.changeBacking(c.above(), c.base());
                }
            }
        } catch (IOException | RuntimeException e) {
            for (int i = done - 1; i >= 0; i--) {
                Chain c = chains.get(i);
                try {
                    if (c.active()) {
                        graph.repoint(users.get(i), c.top());
                    } else {
                        graph.changeBacking(c.above(), c.top());
                    }
                } catch (IOException | RuntimeException undo) {
                    e.addSuppressed(undo);
                }
            }
            record.restore();
            throw e;
        }
        reopenedBases.clear();
        refreeze(reopenedAbove);
        List<Path> files = new ArrayList<>();
        for (BlockNode n : leaving) {
            if (n.driver().kind() == io.diskstack.core.DriverKind.PROTOCOL && n.filename() != null) {
                files.add(Path.of(n.filename()));
            }
        }
        Pivot.close(graph, leaving);
        if (deleteFiles) {
            for (Path f : files) {
                try {
                    Files.deleteIfExists(f);
                } catch (IOException e) {
                    LOG.log(Level.WARNING, "job '" + id() + "': cannot delete '" + f + "': " + e.getMessage());
                }
            }
        }
    }

    private boolean holdsEdge(BlockChild e) {
        for (BlockGraph.Hold h : holds) {
            if (h.edge() == e) {
                return true;
            }
        }
        return false;
    }

    private void releaseHolds() {
        for (BlockGraph.Hold h : holds) {
            h.close();
        }
        holds.clear();
    }

    @Override
    protected void undo() {
        super.undo();
        releaseHolds();
        refreeze(reopenedBases);
        refreeze(reopenedAbove);
    }

    /** Makes nodes the job made writable read-only again, as the snapshot left them. */
    private void refreeze(List<BlockNode> nodes) {
        if (!nodes.isEmpty()) {
            try {
                graph.freeze(nodes);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "job '" + id() + "': nodes stay writable: " + e.getMessage());
            }
            nodes.clear();
        }
    }
}
