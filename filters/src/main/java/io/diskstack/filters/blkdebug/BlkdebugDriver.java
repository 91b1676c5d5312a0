package io.diskstack.filters.blkdebug;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.filters.blkdebug.InjectionRule.Action;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code blkdebug}: fault injection for tests, after QEMU's driver of that name.
 * <pre>
 * {"driver": "blkdebug", "node-name": "dbg", "file": "f0", "align": 4096,
 *  "inject-error":  [{"iotype": "read", "offset": "1M", "length": "64K", "errno": "EIO", "once": true}],
 *  "inject-delay":  [{"iotype": "write", "every": 10, "ms": 50}],
 *  "inject-corrupt":[{"offset": 0, "length": 512}]}
 * </pre>
 * Rules match by I/O type ({@code read}, {@code write}, {@code write-zeroes}, {@code discard},
 * {@code flush}, {@code block-status}, several joined with '+'), by byte range ({@code offset} +
 * {@code length}, or QEMU's {@code sector}) and by count ({@code every} Nth match,
 * {@code once}). {@code align} sets the request alignment, which makes the core pad requests
 * with read-modify-write.
 */
public final class BlkdebugDriver implements BlockDriver {
    @Override
    public String name() {
        return "blkdebug";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        long align = o.optLong("align", 1, 1, 1 << 21);
        if (Long.bitCount(align) != 1) {
            throw o.error("align", "value " + align + " is not a power of two");
        }
        List<InjectionRule> rules = new ArrayList<>();
        rules.addAll(readRules(o, "inject-error", Action.ERROR));
        rules.addAll(readRules(o, "inject-delay", Action.DELAY));
        rules.addAll(readRules(o, "inject-corrupt", Action.CORRUPT));
        return new BlkdebugNode(ctx, rules, (int) align);
    }

    @SuppressWarnings("unchecked")
    private static List<InjectionRule> readRules(NodeOptions o, String key, Action action) {
        List<InjectionRule> rules = new ArrayList<>();
        List<Object> items = o.takeList(key);
        for (int i = 0; i < items.size(); i++) {
            if (!(items.get(i) instanceof Map)) {
                throw o.error(key + "." + i, "must be an object");
            }
            rules.add(InjectionRule.parse(action, o.owner() + " " + key + "[" + i + "]",
                    (Map<String, Object>) items.get(i)));
        }
        return rules;
    }
}
