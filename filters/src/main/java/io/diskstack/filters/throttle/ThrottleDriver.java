package io.diskstack.filters.throttle;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;

/**
 * {@code {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "q0"}}:
 * requests through the node count against the group's limits (QEMU's throttle filter).
 */
public final class ThrottleDriver implements BlockDriver {
    @Override
    public String name() {
        return "throttle";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public java.util.Set<String> reopenableOptions() {
        return java.util.Set.of("throttle-group");
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        ThrottleGroup group = ctx.object("throttle-group", ThrottleGroup.class);
        return new ThrottleNode(ctx, group);
    }
}
