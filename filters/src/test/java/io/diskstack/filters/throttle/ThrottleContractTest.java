package io.diskstack.filters.throttle;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.formats.file.FileDriver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The contract through a throttle node whose group has generous limits (so it takes the lock). */
class ThrottleContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        Path img = dir.resolve("disk.img");
        if (!Files.exists(img)) {
            FileDriver.createSparseFile(img, 8 << 20);
        }
        graph.objects().create(opts("qom-type", "throttle-group", "id", "tg0",
                "limits.bps-total", "2G", "limits.iops-total", 1_000_000L), dir);
        graph.open(opts("driver", "file", "node-name", "f0", "filename", "disk.img"));
        graph.open(opts("driver", "throttle", "node-name", "t0", "throttle-group", "tg0", "file", "f0"));
        return "t0";
    }
}
