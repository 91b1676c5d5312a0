package io.diskstack.core.control;

import java.util.Map;
import java.util.Set;

/** {@code .control/graph}: the node graph drawn as a tree per export ({@link GraphView}). */
public final class GraphFile implements ControlTreeProvider {
    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        return Map.of("graph", ControlFile.readOnly(() -> GraphView.render(context.stack().graph())));
    }

    @Override
    public Set<String> reservedNames() {
        return Set.of("graph");
    }
}
