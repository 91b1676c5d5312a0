package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.testing.BlockNodeContract;
import java.nio.file.Path;

/** The contract through two stacked pass-through filters over an aligned memory node. */
class FilterStackContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws java.io.IOException {
        graph.open(opts("driver", "memory", "node-name", "m0", "size", "8M", "align", 4096));
        graph.open(opts("driver", "passthrough", "node-name", "p0", "file", "m0"));
        graph.open(opts("driver", "passthrough", "node-name", "p1", "file", "p0"));
        return "p1";
    }

    @Override
    protected boolean persists() {
        return false;
    }
}
