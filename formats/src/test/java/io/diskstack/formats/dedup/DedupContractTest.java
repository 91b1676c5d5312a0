package io.diskstack.formats.dedup;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import java.io.IOException;
import java.nio.file.Path;

/** The conformance suite over a dedup device of 4 KiB blocks on two files. */
class DedupContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        DedupTesting.create(dir, 8 << 20, 4096);
        graph.open(DedupTesting.options(dir, "dd0"));
        return "dd0";
    }
}
