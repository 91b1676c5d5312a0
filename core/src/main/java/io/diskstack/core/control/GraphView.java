package io.diskstack.core.control;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.options.Sizes;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The graph drawn as text trees, one per export, like the seed's diagrams:
 * <pre>
 * disk0  export  writable  1 GiB
 * └── r0  raw  1 GiB
 *     └── file: f0  file  1 GiB  /var/lib/disk0.img
 * </pre>
 * It shows node-names, drivers, sizes, file names and each driver's details, never options
 * (so never secrets).
 */
public final class GraphView {
    private GraphView() {}

    public static String render(BlockGraph graph) {
        StringBuilder out = new StringBuilder();
        Map<BlockNode, Boolean> shown = new IdentityHashMap<>();
        for (BlockBackend b : graph.backends()) {
            out.append(b.name()).append("  export  ").append(b.isWritable() ? "writable" : "read-only")
                    .append("  ").append(Sizes.format(b.size())).append('\n');
            renderNode(out, b.rootNode(), null, "", true, shown);
        }
        List<BlockNode> unexported = new ArrayList<>();
        for (BlockNode n : graph.nodes()) {
            if (!shown.containsKey(n) && n.parents().isEmpty()) {
                unexported.add(n);
            }
        }
        if (!unexported.isEmpty()) {
            out.append("(not exported)\n");
            for (BlockNode n : unexported) {
                renderNode(out, n, null, "", true, shown);
            }
        }
        return out.toString();
    }

    private static void renderNode(StringBuilder out, BlockNode node, String edge, String indent, boolean last,
                                   Map<BlockNode, Boolean> shown) {
        out.append(indent).append(last ? "└── " : "├── ");
        if (edge != null) {
            out.append(edge).append(": ");
        }
        out.append(node.nodeName());
        if (shown.put(node, Boolean.TRUE) != null) {
            out.append("  (shown above)\n");
            return;
        }
        out.append("  ").append(node.driver().name()).append("  ").append(Sizes.format(node.size()));
        String filename = node.driver().kind() == DriverKind.PROTOCOL ? node.filename() : null;
        if (filename != null) {
            out.append("  ").append(filename);
        }
        String details = node.details();
        if (details != null && !details.isEmpty()) {
            out.append("  ").append(details);
        }
        if (node.isReadOnly()) {
            out.append("  read-only");
        }
        out.append('\n');
        List<BlockChild> children = node.children();
        String childIndent = indent + (last ? "    " : "│   ");
        for (int i = 0; i < children.size(); i++) {
            BlockChild c = children.get(i);
            renderNode(out, c.node(), c.name(), childIndent, i == children.size() - 1, shown);
        }
    }
}
