package io.diskstack.core.control;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockNode;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code .control/DISK/stats}: the export's request counters, then one
 * {@code NODE.COUNTER value} line per counter of every node below it, each node once.
 */
public final class ExportStatsFile implements ControlTreeProvider {
    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (BlockBackend b : context.stack().backends()) {
            files.put(b.name() + "/stats", ControlFile.readOnly(() -> render(b)));
        }
        return files;
    }

    static String render(BlockBackend backend) {
        StringBuilder out = new StringBuilder(backend.stats().render());
        appendNodeStats(out, backend.rootNode(), new IdentityHashMap<>());
        return out.toString();
    }

    /** A count as it is, a ratio with three decimals: {@code 2.500}. */
    static String format(Number value) {
        if (value instanceof Double || value instanceof Float) {
            return String.format(java.util.Locale.ROOT, "%.3f", value.doubleValue());
        }
        return value.toString();
    }

    private static void appendNodeStats(StringBuilder out, BlockNode node, Map<BlockNode, Boolean> seen) {
        if (seen.put(node, Boolean.TRUE) != null) {
            return;
        }
        for (Map.Entry<String, ? extends Number> s : node.stats().entrySet()) {
            out.append(node.nodeName()).append('.').append(s.getKey()).append(' ').append(format(s.getValue()))
                    .append('\n');
        }
        for (BlockChild c : node.children()) {
            appendNodeStats(out, c.node(), seen);
        }
    }
}
