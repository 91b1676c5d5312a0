package io.diskstack.core.control;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The graph as QEMU's {@code x-debug-query-block-graph} sees it: numbered vertices (exports,
 * holders such as jobs, and nodes) and the edges between them, each edge with its name, roles and
 * permissions. One walk for {@code graph.json} and {@code graph.dot}.
 */
final class GraphModel {
    /** QEMU's vertex types, and {@code holder} for a parentless user that is neither an export nor a job. */
    static final String BACKEND = "block-backend";
    static final String JOB = "block-job";
    static final String DRIVER = "block-driver";
    static final String HOLDER = "holder";

    /** A vertex: {@code node} is set for block-driver vertices, {@code backend} for exports. */
    record Vertex(int id, String type, String name, BlockNode node, BlockBackend backend) {}

    /** An edge from vertex {@code parent} to vertex {@code child}. */
    record Edge(int parent, int child, BlockChild edge) {}

    final List<Vertex> vertices = new ArrayList<>();
    final List<Edge> edges = new ArrayList<>();

    static GraphModel of(BlockGraph graph) {
        GraphModel m = new GraphModel();
        List<BlockBackend> backends = graph.backends();
        Map<BlockBackend, Integer> backendIds = new IdentityHashMap<>();
        for (BlockBackend b : backends) {
            backendIds.put(b, m.add(BACKEND, b.name(), null, b));
        }
        List<BlockNode> nodes = graph.nodes();
        Map<String, Integer> holderIds = new LinkedHashMap<>();
        for (BlockNode n : nodes) {
            for (BlockChild p : n.parents()) {
                if (p.parent() == null && rootOf(p, backends) == null && p.holder() != null) {
                    holderIds.computeIfAbsent(p.holder(), h -> m.add(holderType(h), holderName(h), null, null));
                }
            }
        }
        Map<BlockNode, Integer> nodeIds = new IdentityHashMap<>();
        for (BlockNode n : nodes) {
            nodeIds.put(n, m.add(DRIVER, n.nodeName(), n, null));
        }
        for (BlockNode n : nodes) {
            for (BlockChild p : n.parents()) {
                if (p.parent() != null) {
                    continue;
                }
                BlockBackend b = rootOf(p, backends);
                Integer from = b != null ? backendIds.get(b) : p.holder() == null ? null : holderIds.get(p.holder());
                if (from != null) {
                    m.edges.add(new Edge(from, nodeIds.get(n), p));
                }
            }
        }
        for (BlockNode n : nodes) {
            for (BlockChild c : n.children()) {
                Integer child = nodeIds.get(c.node());
                if (child != null) {
                    m.edges.add(new Edge(nodeIds.get(n), child, c));
                }
            }
        }
        return m;
    }

    private int add(String type, String name, BlockNode node, BlockBackend backend) {
        int id = vertices.size() + 1;
        vertices.add(new Vertex(id, type, name, node, backend));
        return id;
    }

    private static BlockBackend rootOf(BlockChild edge, List<BlockBackend> backends) {
        for (BlockBackend b : backends) {
            if (b.isRoot(edge)) {
                return b;
            }
        }
        return null;
    }

    /** {@code job 'commit-disk0'} holds for a block job. */
    private static String holderType(String holder) {
        return holder.startsWith("job '") ? JOB : HOLDER;
    }

    private static String holderName(String holder) {
        if (holder.startsWith("job '") && holder.endsWith("'")) {
            return holder.substring(5, holder.length() - 1);
        }
        return holder;
    }
}
