package io.diskstack.filters.quorum;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The contract through quorum with read-pattern=fifo and rewrite-corrupted over children with
 * different alignments: each child pads its own requests.
 */
class QuorumMixedAlignmentContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        graph.open(opts("driver", "memory", "node-name", "m0", "size", "8M", "align", 4096, "mem-align", 4096));
        graph.open(opts("driver", "memory", "node-name", "m1", "size", "8M", "align", 512));
        graph.open(opts("driver", "memory", "node-name", "m2", "size", "8M"));
        graph.open(opts("driver", "quorum", "node-name", "q0", "children", List.of("m0", "m1", "m2"),
                "vote-threshold", 3L, "rewrite-corrupted", true));
        graph.open(opts("driver", "quorum", "node-name", "q1", "children", List.of("q0"),
                "vote-threshold", 1L, "read-pattern", "fifo"));
        return "q1";
    }

    @Override
    protected boolean persists() {
        return false;
    }
}
