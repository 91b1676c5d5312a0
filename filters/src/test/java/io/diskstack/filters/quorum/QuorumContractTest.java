package io.diskstack.filters.quorum;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.formats.file.FileDriver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The contract through a quorum of three raw images, vote-threshold 2. */
class QuorumContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        for (int i = 0; i < 3; i++) {
            Path img = dir.resolve("c" + i + ".img");
            if (!Files.exists(img)) {
                FileDriver.createSparseFile(img, 8 << 20);
            }
            graph.open(opts("driver", "file", "node-name", "f" + i, "filename", img.getFileName().toString()));
            graph.open(opts("driver", "raw", "node-name", "r" + i, "file", "f" + i));
        }
        graph.open(opts("driver", "quorum", "node-name", "q0", "children", List.of("r0", "r1", "r2"),
                "vote-threshold", 2L));
        return "q0";
    }
}
