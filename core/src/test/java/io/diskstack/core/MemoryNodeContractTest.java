package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.testing.BlockNodeContract;
import java.nio.file.Path;

/** The contract over an in-memory node that demands 512-byte requests and 4 KiB-aligned buffers. */
class MemoryNodeContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws java.io.IOException {
        graph.open(opts("driver", "memory", "node-name", "m0", "size", "8M", "align", 512, "mem-align", 4096));
        return "m0";
    }

    @Override
    protected boolean persists() {
        return false;
    }
}
