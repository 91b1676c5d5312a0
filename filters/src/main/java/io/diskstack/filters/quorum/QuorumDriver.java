package io.diskstack.filters.quorum;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.util.EnumSet;
import java.util.List;

/**
 * {@code {"driver": "quorum", "node-name": "q0", "children": ["a", "b", "c"], "vote-threshold": 2,
 * "read-pattern": "quorum", "rewrite-corrupted": true}}, with QEMU's options: reads vote on the
 * children's data (or, with {@code read-pattern=fifo}, take the first child that answers),
 * writes go to every child and succeed when {@code vote-threshold} children succeed.
 * {@code blkverify=on} (two children, threshold 2) fails any read where they differ.
 *
 * <p>A hung child stalls every request that reaches it: like QEMU, quorum waits for every child
 * before it answers, even once {@code vote-threshold} identical answers are in. There is no
 * timeout on purpose: answering a write before it has landed on every child (or a read before
 * the slow child's answer) would let later requests overtake it on that child, and the children
 * would diverge.
 */
public final class QuorumDriver implements BlockDriver {
    /** QEMU's QuorumReadPattern. */
    enum ReadPattern { QUORUM, FIFO }

    @Override
    public String name() {
        return "quorum";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        List<BlockChild> children = ctx.openChildList("children", EnumSet.of(ChildRole.DATA));
        if (children.isEmpty()) {
            throw o.error("children", "is required: give at least one child (children.0, children.1, …)");
        }
        if (!o.has("vote-threshold")) {
            throw o.error("vote-threshold", "is required");
        }
        long threshold = o.optLong("vote-threshold", 0);
        if (threshold < 1) {
            throw o.error("vote-threshold", "value " + threshold + " must be at least 1");
        }
        if (threshold > children.size()) {
            throw o.error("vote-threshold", "value " + threshold + " is more than the number of children ("
                    + children.size() + ")");
        }
        ReadPattern pattern = o.optEnum("read-pattern", ReadPattern.class, ReadPattern.QUORUM);
        boolean blkverify = o.optBool("blkverify", false);
        if (blkverify && pattern == ReadPattern.FIFO) {
            throw o.error("blkverify", "cannot be used with read-pattern fifo (fifo reads one child: nothing to compare)");
        }
        if (blkverify && (children.size() != 2 || threshold != 2)) {
            throw o.error("blkverify", "needs exactly two children and vote-threshold 2");
        }
        boolean rewrite = o.optBool("rewrite-corrupted", false);
        if (rewrite && pattern == ReadPattern.FIFO) {
            throw o.error("rewrite-corrupted", "cannot be used with read-pattern fifo (fifo reads one child: no vote "
                    + "finds the corrupted ones)");
        }
        if (rewrite && blkverify) {
            throw o.error("rewrite-corrupted", "cannot be used with blkverify");
        }
        long size = children.get(0).size();
        for (int i = 1; i < children.size(); i++) {
            long s = children.get(i).size();
            if (s != size) {
                throw o.error("children." + i, "is " + s + " bytes but 'children.0' is " + size
                        + ": quorum children must have the same size");
            }
        }
        java.util.Set<String> outOfSync = new java.util.LinkedHashSet<>();
        for (Object name : o.has("out-of-sync") || o.has("out-of-sync.0") ? o.takeList("out-of-sync") : List.of()) {
            if (!(name instanceof String s) || children.stream().noneMatch(c -> c.name().equals(s))) {
                throw o.error("out-of-sync", "names '" + name + "', which is not one of its children");
            }
            outOfSync.add((String) name);
        }
        if (children.size() - outOfSync.size() < threshold) {
            throw o.error("out-of-sync", "leaves " + (children.size() - outOfSync.size())
                    + " children in sync, vote-threshold is " + threshold);
        }
        QuorumNode node = new QuorumNode(ctx, children, (int) threshold, pattern, rewrite, blkverify, size, outOfSync);
        if (!outOfSync.isEmpty()) {
            node.startResync(false); // where an earlier mount left off
        }
        return node;
    }
}
