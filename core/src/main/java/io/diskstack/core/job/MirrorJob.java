package io.diskstack.core.job;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.BlockStatusQuery;
import io.diskstack.core.Permissions;
import io.diskstack.core.config.ConfigEdit;
import io.diskstack.core.config.ConfigRewrite;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * QEMU's blockdev-mirror with replaces (libvirt's blockcopy --pivot): what a node shows is
 * copied to a new image while it is written, and the new image then takes the node's place in
 * every parent and export: moving a quorum child or a whole image to another disk without
 * stopping. The old image's file stays where it was.
 */
final class MirrorJob extends SyncJob {
    private final BlockNode source;
    private final TargetImage target;
    private final ConfigRecord record;
    private final List<BlockGraph.Hold> holds = new ArrayList<>();
    private boolean pivoted;

    MirrorJob(String id, BlockGraph graph, BlockNode source, TargetImage target, JobClock clock, long speed,
              ConfigRecord record, boolean autoComplete) {
        super(id, "mirror", List.of(source, target.top), clock, speed, graph, autoComplete);
        this.source = source;
        this.target = target;
        this.record = record;
    }

    /** Holds what the job reads and writes. Before start. */
    void prepare() {
        try {
            BlockGraph.Hold read = graph.hold(source, Permissions.sharingReader(), "job '" + id() + "'");
            holds.add(read);
            BlockGraph.Hold write = graph.hold(target.top, Permissions.soleWriter(true), "job '" + id() + "'");
            holds.add(write);
            lanes.add(new Lane(source, read.edge(), write.edge(), Math.max(65536, source.clusterSize())));
        } catch (RuntimeException e) {
            undo();
            throw e;
        }
    }

    @Override
    protected long plan(Lane lane, long offset, long length, boolean[] zero) throws IOException {
        BlockStatus st = BlockStatusQuery.above(source, offset, length);
        zero[0] = st.node() == null || st.isZero();
        return st.length();
    }

    @Override
    protected List<BlockNode> drainedNodes() {
        return List.of(source);
    }

    private List<BlockChild> users() {
        List<BlockChild> users = new ArrayList<>();
        for (BlockChild e : source.parents()) {
            if (holds.stream().noneMatch(h -> h.edge() == e)) {
                users.add(e);
            }
        }
        return users;
    }

    /** Records the pivot: the target's entries, references to the source naming it, the source and what only it used gone. */
    void recordPivot(ConfigEdit edit) {
        String from = source.nodeName();
        String to = target.top.nodeName();
        edit.insertAfter(from, target.options);
        for (BlockChild e : users()) {
            if (e.parent() != null) {
                edit.repoint(e.parent().nodeName(), e.name(), from, to);
            }
        }
        edit.repointExports(from, to);
        Pivot.forget(edit, Pivot.leaving(List.of(source), List.of(target.top)));
    }

    @Override
    protected void pivot() throws IOException {
        target.useRecordedCache();
        List<BlockChild> users = users();
        List<BlockNode> leaving = Pivot.leaving(List.of(source), List.of(target.top));
        ConfigRewrite.syncFolder(target.path.getParent());
        record.write(this::recordPivot);
        releaseHolds();
        try {
            graph.repoint(users, target.top);
        } catch (RuntimeException e) {
            record.restore();
            throw e;
        }
        pivoted = true;
        Pivot.close(graph, leaving);
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
        if (!pivoted) {
            target.discard();
        }
    }
}
