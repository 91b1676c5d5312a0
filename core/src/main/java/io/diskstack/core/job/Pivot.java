package io.diskstack.core.job;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.config.ConfigEdit;
import io.diskstack.core.config.ExternalSnapshotRecord;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

/** What a job's graph change takes out of the graph and the config. */
final class Pivot {
    private static final Logger LOG = Logger.getLogger(Pivot.class.getName());

    private Pivot() {}

    /**
     * The nodes that leave the graph when {@code roots} go: the roots, and below them every node
     * whose users would all be leaving, except {@code keep} (a commit's base) and what is below it.
     * Parents first.
     */
    static List<BlockNode> leaving(Collection<BlockNode> roots, Collection<BlockNode> keep) {
        Set<BlockNode> out = Collections.newSetFromMap(new IdentityHashMap<>());
        Set<BlockNode> kept = Collections.newSetFromMap(new IdentityHashMap<>());
        kept.addAll(keep);
        List<BlockNode> order = new ArrayList<>(roots);
        out.addAll(roots);
        for (int i = 0; i < order.size(); i++) {
            for (BlockChild c : order.get(i).children()) {
                BlockNode n = c.node();
                if (out.contains(n) || kept.contains(n)) {
                    continue;
                }
                boolean onlyLeaving = true;
                for (BlockChild user : n.parents()) {
                    if (user.parent() == null || !out.contains(user.parent())) {
                        onlyLeaving = false;
                        break;
                    }
                }
                if (onlyLeaving) {
                    out.add(n);
                    order.add(n);
                }
            }
        }
        return order;
    }

    /** Removes the leaving nodes' entries, and the external snapshots whose overlays leave. */
    static void forget(ConfigEdit edit, List<BlockNode> leaving) {
        List<String> names = leaving.stream().map(BlockNode::nodeName).toList();
        for (String n : names) {
            if (!n.startsWith("#")) {
                edit.removeNode(n);
            }
        }
        List<String> gone = new ArrayList<>();
        for (ExternalSnapshotRecord r : edit.snapshots()) {
            if (r.overlays().stream().anyMatch(names::contains)) {
                gone.add(r.name());
            }
        }
        edit.removeSnapshots(gone);
    }

    /** Closes the leaving nodes: each once nobody uses it any more. */
    static void close(BlockGraph graph, List<BlockNode> leaving) {
        for (BlockNode n : leaving) {
            if (graph.node(n.nodeName()) == n && n.parents().isEmpty()) {
                try {
                    graph.removeWithOrphans(n);
                } catch (IOException | RuntimeException e) {
                    LOG.log(Level.WARNING, "cannot close node '" + n.nodeName() + "': " + e.getMessage());
                }
            }
        }
    }
}
