package io.diskstack.formats.dedup;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import java.io.IOException;
import java.nio.file.Path;

/** The conformance suite with 64 KiB blocks and caches so small that pages are evicted all the time. */
class DedupLargeBlockContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        DedupTesting.create(dir, 6 << 20, 65536);
        graph.open(DedupTesting.options(dir, "dd0", "cache-size", "128K"));
        return "dd0";
    }
}
