package io.diskstack.formats;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.formats.file.FileDriver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The contract through a FilterNode stack over raw over file. */
class FilterOverRawContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        Path img = dir.resolve("disk.img");
        if (!Files.exists(img)) {
            FileDriver.createSparseFile(img, 8 << 20);
        }
        graph.open(opts("driver", "file", "node-name", "f0", "filename", "disk.img"));
        graph.open(opts("driver", "raw", "node-name", "r0", "file", "f0"));
        graph.open(opts("driver", "passthrough", "node-name", "p0", "file", "r0"));
        graph.open(opts("driver", "passthrough", "node-name", "p1", "file", "p0"));
        return "p1";
    }
}
