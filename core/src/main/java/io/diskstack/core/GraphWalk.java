package io.diskstack.core;

import io.diskstack.core.BlockNode.Passage;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The one walk over the graph's shape that every operation uses: the request path (copy-on-read
 * through plain filters), block status, copy-on-read's bottom, internal and external snapshots,
 * snapshot views and jobs. It reads only what nodes declare ({@link BlockNode#passage()} and
 * the roles of their edges), as QEMU's bdrv_skip_filters, bdrv_cow_child and
 * bdrv_backing_chain_next do, and never asks for a driver by name.
 */
public final class GraphWalk {
    private GraphWalk() {}

    /** The first node at or below {@code node} that is not a plain filter (QEMU's bdrv_skip_filters). */
    public static BlockNode skipFilters(BlockNode node) {
        BlockChild filtered = node.filteredChild();
        while (filtered != null) {
            node = filtered.node();
            filtered = node.filteredChild();
        }
        return node;
    }

    /** The next image down the backing chain of {@code node}, filters skipped; null at the end. */
    public static BlockNode backingChainNext(BlockNode node) {
        BlockChild cow = skipFilters(node).cowChild();
        return cow == null ? null : skipFilters(cow.node());
    }

    /** True if {@code below} is on the backing chain under {@code top} (not {@code top} itself). */
    public static boolean isBelowInChain(BlockNode top, BlockNode below) {
        for (BlockNode n = backingChainNext(top); n != null; n = backingChainNext(n)) {
            if (n == below) {
                return true;
            }
        }
        return false;
    }

    /**
     * Where an operation lands below {@code top}: walking down, a {@link Passage#PASS} node hands
     * the walk to its one data child, a {@link Passage#FAN_OUT} node to each of its data and
     * metadata children, and the walk stops at the first node that {@code lands} accepts. An
     * {@link Passage#IMAGE} node it does not accept hands the walk to its primary child if that is
     * its only data child (QEMU's snapshot fallback: raw over a qcow2 image), else the walk fails.
     * Each node once, in walk order.
     *
     * @param what what lands, for messages ("supports internal snapshots")
     * @throws ConfigException naming the node where a path ended without a landing point
     */
    public static List<BlockNode> landings(BlockNode top, Predicate<BlockNode> lands, String what) {
        List<BlockNode> out = new ArrayList<>();
        String stop = walk(top, lands, out, Collections.newSetFromMap(new IdentityHashMap<>()));
        if (stop != null) {
            throw new ConfigException("no node below '" + top.nodeName() + "' " + what + " (" + stop + ")");
        }
        return out;
    }

    /** The images an external snapshot puts overlays on: the first image on each path down. */
    public static List<BlockNode> images(BlockNode top) {
        return landings(top, n -> n.passage() == Passage.IMAGE, "is an image");
    }

    private static String walk(BlockNode node, Predicate<BlockNode> lands, List<BlockNode> out, Set<BlockNode> seen) {
        if (lands.test(node)) {
            if (seen.add(node)) {
                out.add(node);
            }
            return null;
        }
        String at = "'" + node.nodeName() + "' (" + node.driver().name() + ")";
        List<BlockChild> next = next(node);
        if (next == null) {
            return "the walk ends at " + at + (node.passage() == Passage.FAN_OUT || node.dataChildren().size() < 2
                    ? "" : ", which keeps its data in more than one child");
        }
        for (BlockChild c : next) {
            String stop = walk(c.node(), lands, out, seen);
            if (stop != null) {
                return next.size() == 1 ? stop : stop + ", below child '" + c.name() + "' of '" + node.nodeName()
                        + "': every child needs one";
            }
        }
        return null;
    }

    /** The children a walk goes on to from a node that does not take it itself; null if none. */
    public static List<BlockChild> next(BlockNode node) {
        switch (node.passage()) {
            case FAN_OUT -> {
                List<BlockChild> data = node.dataChildren();
                return data.isEmpty() ? null : data;
            }
            case PASS -> {
                List<BlockChild> data = new ArrayList<>();
                for (BlockChild c : node.children()) {
                    if (c.roles().contains(ChildRole.DATA)) {
                        data.add(c);
                    }
                }
                return data.size() == 1 ? data : null;
            }
            default -> {
                BlockChild primary = node.primaryChild();
                List<BlockChild> data = node.dataChildren();
                return primary != null && data.size() == 1 && data.get(0) == primary ? data : null;
            }
        }
    }

    /**
     * The nodes from {@code top} down to {@code target} along the walk, both included; empty if
     * the walk does not reach it. Backing edges are followed too, so a point deep in a chain is
     * found.
     */
    public static List<BlockNode> pathTo(BlockNode top, BlockNode target) {
        List<BlockNode> path = new ArrayList<>();
        if (find(top, target, path, Collections.newSetFromMap(new IdentityHashMap<>()))) {
            return path;
        }
        return List.of();
    }

    private static boolean find(BlockNode node, BlockNode target, List<BlockNode> path, Set<BlockNode> seen) {
        if (!seen.add(node)) {
            return false;
        }
        path.add(node);
        if (node == target) {
            return true;
        }
        for (BlockChild c : node.children()) {
            if (find(c.node(), target, path, seen)) {
                return true;
            }
        }
        path.remove(path.size() - 1);
        return false;
    }
}
