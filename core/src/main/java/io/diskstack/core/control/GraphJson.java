package io.diskstack.core.control;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.DriverKind;
import io.diskstack.core.Permission;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code .control/graph.json}: the graph in the shape of QEMU's {@code x-debug-query-block-graph}
 * ({@code nodes} with {@code id}, {@code type}, {@code name}; {@code edges} with {@code parent},
 * {@code child}, {@code name}, {@code perm}, {@code shared-perm}), plus what QEMU leaves out:
 * each node's {@code driver}, {@code kind}, {@code size}, {@code read-only} and, for protocol nodes,
 * {@code filename}; each edge's {@code roles}. Never options, so never secrets.
 */
final class GraphJson {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private GraphJson() {}

    static String render(BlockGraph graph) {
        GraphModel m = GraphModel.of(graph);
        List<Map<String, Object>> nodes = new ArrayList<>();
        for (GraphModel.Vertex v : m.vertices) {
            Map<String, Object> n = new LinkedHashMap<>();
            n.put("id", v.id());
            n.put("type", v.type());
            n.put("name", v.name());
            if (v.node() != null) {
                BlockNode node = v.node();
                n.put("driver", node.driver().name());
                n.put("kind", node.driver().kind().name().toLowerCase(Locale.ROOT));
                n.put("size", node.size());
                n.put("read-only", node.isReadOnly());
                if (node.driver().kind() == DriverKind.PROTOCOL && node.filename() != null) {
                    n.put("filename", node.filename());
                }
            } else if (v.backend() != null) {
                n.put("size", v.backend().size());
                n.put("writable", v.backend().isWritable());
            }
            nodes.add(n);
        }
        List<Map<String, Object>> edges = new ArrayList<>();
        for (GraphModel.Edge e : m.edges) {
            BlockChild c = e.edge();
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("parent", e.parent());
            out.put("child", e.child());
            out.put("name", c.name());
            out.put("perm", names(c.permissions().taken()));
            out.put("shared-perm", names(c.permissions().shared()));
            List<String> roles = new ArrayList<>();
            for (ChildRole r : ChildRole.values()) {
                if (c.roles().contains(r)) {
                    roles.add(r.name().toLowerCase(Locale.ROOT));
                }
            }
            out.put("roles", roles);
            edges.add(out);
        }
        Map<String, Object> top = new LinkedHashMap<>();
        top.put("nodes", nodes);
        top.put("edges", edges);
        try {
            return JSON.writeValueAsString(top) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** QEMU's BlockPermission names: consistent-read, write, write-unchanged, resize, graph-mod. */
    private static List<String> names(Set<Permission> perms) {
        List<String> out = new ArrayList<>();
        for (Permission p : Permission.values()) {
            if (perms.contains(p)) {
                out.add(p == Permission.GRAPH_MOD ? "graph-mod" : p.name().toLowerCase(Locale.ROOT).replace('_', '-'));
            }
        }
        return out;
    }
}
