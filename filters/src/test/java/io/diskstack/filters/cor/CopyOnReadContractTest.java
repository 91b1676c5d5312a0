package io.diskstack.filters.cor;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import java.io.IOException;
import java.nio.file.Path;

/** The contract through copy-on-read over an overlay with a (zero) backing node: every read populates. */
class CopyOnReadContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        graph.open(opts("driver", "memory", "node-name", "base", "size", "8M"));
        graph.open(opts("driver", "memory", "node-name", "data", "size", "8M"));
        graph.open(opts("driver", "test-overlay", "node-name", "ov", "file", "data", "backing", "base",
                "cluster-size", 4096));
        graph.open(opts("driver", "copy-on-read", "node-name", "cor", "file", "ov"));
        return "cor";
    }

    @Override
    protected boolean persists() {
        return false;
    }
}
