package io.diskstack.filters.throttle;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import java.io.IOException;
import java.nio.file.Path;

/** The contract through a throttle node whose group has no limits, over an aligned memory node. */
class ThrottleUnlimitedContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        graph.objects().create(opts("qom-type", "throttle-group", "id", "tg0"), dir);
        graph.open(opts("driver", "memory", "node-name", "m0", "size", "8M", "align", 4096));
        graph.open(opts("driver", "throttle", "node-name", "t0", "throttle-group", "tg0", "file", "m0"));
        return "t0";
    }

    @Override
    protected boolean persists() {
        return false;
    }
}
