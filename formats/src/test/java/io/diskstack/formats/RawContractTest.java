package io.diskstack.formats;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.formats.file.FileDriver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** The contract on {@code raw} with an offset window, its file given as nested options. */
class RawContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        Path img = dir.resolve("disk.img");
        if (!Files.exists(img)) {
            FileDriver.createSparseFile(img, 10 << 20);
        }
        graph.open(opts("driver", "raw", "node-name", "r0", "offset", "1M", "size", "8M",
                "file", Map.of("driver", "file", "filename", "disk.img")));
        return "r0";
    }
}
