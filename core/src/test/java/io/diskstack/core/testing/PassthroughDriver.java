package io.diskstack.core.testing;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.FilterNode;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;

/** A test-only filter that overrides nothing: {@code {"driver": "passthrough", "file": …}}. */
public final class PassthroughDriver implements BlockDriver {
    @Override
    public String name() {
        return "passthrough";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        return new FilterNode(ctx) {
            @Override
            protected void close() {
                MemoryDriver.CLOSED.add(nodeName());
            }
        };
    }
}
