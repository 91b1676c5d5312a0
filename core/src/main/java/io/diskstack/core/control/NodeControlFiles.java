package io.diskstack.core.control;

import io.diskstack.core.BlockNode;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** {@code .control/nodes/NODE/…}: the files of every node that is a {@link ControlProvider} (luks key slots). */
public final class NodeControlFiles implements ControlTreeProvider {
    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (BlockNode n : context.stack().graph().nodes()) {
            if (n instanceof ControlProvider p) {
                p.controlFiles().forEach((name, file) -> files.put("nodes/" + n.nodeName() + "/" + name, file));
            }
        }
        return files;
    }

    @Override
    public Set<String> reservedNames() {
        return Set.of("nodes");
    }
}
