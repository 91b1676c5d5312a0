package io.diskstack.filters.blkdebug;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import java.io.IOException;
import java.nio.file.Path;

/** The contract through blkdebug with align=4096: every unaligned request is padded by the core. */
class BlkdebugAlignedContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        graph.open(opts("driver", "memory", "node-name", "m0", "size", "8M"));
        graph.open(opts("driver", "blkdebug", "node-name", "dbg", "file", "m0", "align", 4096));
        return "dbg";
    }

    @Override
    protected boolean persists() {
        return false;
    }
}
