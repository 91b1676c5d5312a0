package io.diskstack.filters.cor;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.DriverKind;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;

/**
 * {@code {"driver": "copy-on-read", "node-name": "cor0", "file": "q0", "bottom": "base0"}}: reads
 * through the node copy the data they get from the backing chain of {@code file} into
 * {@code file}'s top image, so later reads are local (QEMU's copy-on-read filter). With
 * {@code bottom}, only data from the chain down to that node (inclusive) is copied.
 */
public final class CopyOnReadDriver implements BlockDriver {
    @Override
    public String name() {
        return "copy-on-read";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        BlockChild file = ctx.openChild("file", ChildRole.filtered());
        BlockNode bottom = ctx.optNodeReference("bottom");
        if (bottom != null) {
            if (GraphWalk.skipFilters(bottom) != bottom) {
                throw ctx.options().error("bottom", "node '" + bottom.nodeName() + "' is a filter");
            }
            if (!GraphWalk.isBelowInChain(file.node(), bottom)) {
                throw ctx.options().error("bottom", "node '" + bottom.nodeName()
                        + "' is not in the backing chain of '" + file.node().nodeName() + "'");
            }
        }
        return new CopyOnReadNode(ctx, file, bottom);
    }
}
