package io.diskstack.core.control;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.DriverKind;
import io.diskstack.core.options.Sizes;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code .control/graph.dot}: the graph for Graphviz ({@code dot -Tsvg MNT/.control/graph.dot}),
 * drawn like the seed's diagrams: exports on top, then the filters, fan-out nodes and images
 * down to the host files; backing edges dashed, a job's holds dotted. A node's look comes from
 * what it declares (its passage, its driver's kind, its edges' roles), never from its driver's
 * name. Labels hold what the {@code graph} file shows, never options.
 */
final class GraphDot {
    private GraphDot() {}

    static String render(BlockGraph graph) {
        GraphModel m = GraphModel.of(graph);
        StringBuilder out = new StringBuilder();
        out.append("digraph diskstack {\n");
        out.append("  rankdir=TB;\n");
        out.append("  node [fontname=\"Helvetica\", fontsize=11, penwidth=1.2];\n");
        out.append("  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\"];\n");
        List<String> exports = new ArrayList<>();
        for (GraphModel.Vertex v : m.vertices) {
            out.append("  v").append(v.id()).append(" [").append(style(v)).append("];\n");
            if (v.type().equals(GraphModel.BACKEND)) {
                exports.add("v" + v.id());
            }
        }
        if (!exports.isEmpty()) {
            out.append("  { rank=source; ").append(String.join("; ", exports)).append("; }\n");
        }
        for (GraphModel.Edge e : m.edges) {
            BlockChild c = e.edge();
            out.append("  v").append(e.parent()).append(" -> v").append(e.child()).append(" [label=")
                    .append(quote(List.of(c.name())));
            if (c.roles().contains(ChildRole.COW)) {
                out.append(", style=dashed");
            } else if (c.parent() == null && !m.vertices.get(e.parent() - 1).type().equals(GraphModel.BACKEND)) {
                out.append(", style=dotted");
            }
            out.append("];\n");
        }
        out.append("}\n");
        return out.toString();
    }

    private static String style(GraphModel.Vertex v) {
        List<String> lines = new ArrayList<>();
        lines.add(v.name());
        switch (v.type()) {
            case GraphModel.BACKEND -> {
                lines.add("export  " + (v.backend().isWritable() ? "writable" : "read-only") + "  "
                        + Sizes.format(v.backend().size()));
                return "shape=box, style=\"rounded,filled,bold\", fillcolor=\"#cfe2f3\", label=" + quote(lines);
            }
            case GraphModel.JOB, GraphModel.HOLDER -> {
                lines.add(v.type().equals(GraphModel.JOB) ? "job" : "holder");
                return "shape=ellipse, style=dashed, label=" + quote(lines);
            }
            default -> {
                BlockNode n = v.node();
                lines.add(n.driver().name() + "  " + Sizes.format(n.size()) + (n.isReadOnly() ? "  read-only" : ""));
                String details = n.details();
                if (details != null && !details.isEmpty()) {
                    lines.add(details);
                }
                boolean protocol = n.driver().kind() == DriverKind.PROTOCOL;
                if (protocol && n.filename() != null) {
                    lines.add(n.filename());
                }
                String look = switch (n.passage()) {
                    case PASS -> "shape=box, style=\"rounded,filled\", fillcolor=\"#fff2cc\"";
                    case FAN_OUT -> "shape=hexagon, style=filled, fillcolor=\"#f4cccc\"";
                    case IMAGE -> protocol ? "shape=cylinder, style=filled, fillcolor=\"#eeeeee\""
                            : "shape=box3d, style=filled, fillcolor=\"#d9ead3\"";
                };
                return look + ", label=" + quote(lines);
            }
        }
    }

    /** A DOT string of lines: quotes and backslashes escaped, lines joined with DOT's {@code \n}. */
    private static String quote(List<String> lines) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < lines.size(); i++) {
            if (i > 0) {
                b.append("\\n");
            }
            for (char c : lines.get(i).toCharArray()) {
                if (c == '"' || c == '\\') {
                    b.append('\\');
                }
                b.append(c < 0x20 ? ' ' : c);
            }
        }
        return b.append('"').toString();
    }
}
