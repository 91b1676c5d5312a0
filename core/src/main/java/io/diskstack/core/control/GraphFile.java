package io.diskstack.core.control;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code .control/graph} (the node graph drawn as a tree per export, {@link GraphView}),
 * {@code graph.json} (QEMU's x-debug-query-block-graph shape, {@link GraphJson}) and
 * {@code graph.dot} (for Graphviz, {@link GraphDot}).
 */
public final class GraphFile implements ControlTreeProvider {
    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        files.put("graph", ControlFile.readOnly(() -> GraphView.render(context.stack().graph())));
        files.put("graph.json", ControlFile.readOnly(() -> GraphJson.render(context.stack().graph())));
        files.put("graph.dot", ControlFile.readOnly(() -> GraphDot.render(context.stack().graph())));
        return files;
    }

    @Override
    public Set<String> reservedNames() {
        return Set.of("graph", "graph.json", "graph.dot");
    }
}
