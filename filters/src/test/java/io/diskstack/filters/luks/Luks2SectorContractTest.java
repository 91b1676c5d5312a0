package io.diskstack.filters.luks;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The contract through luks (LUKS2, 4096-byte sectors, cbc-essiv, argon2id) over raw over file:
 * every request smaller than a sector is a read-modify-write done by the core.
 */
class Luks2SectorContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        Path img = dir.resolve("disk2.luks");
        if (!Files.exists(img)) {
            LuksTesting.create(img, 8 << 20, "format", "luks2", "sector-size", "4096", "cipher-mode", "cbc",
                    "ivgen-alg", "essiv", "kdf", "argon2id", "kdf-memory", "256", "kdf-time", "1");
            BlockGraph setup = TestGraphs.newGraph(dir);
            try {
                LuksTesting.zeroFill(setup.addBackend("setup", open(setup), true));
            } finally {
                setup.close();
            }
        }
        return open(graph);
    }

    private static String open(BlockGraph g) throws IOException {
        LuksTesting.addSecret(g, "s0", LuksTesting.PASS);
        g.open(opts("driver", "file", "node-name", "f0", "filename", "disk2.luks"));
        g.open(opts("driver", "raw", "node-name", "r0", "file", "f0"));
        g.open(opts("driver", "luks", "node-name", "l0", "file", "r0", "key-secret", "s0"));
        return "l0";
    }

    @Test
    void alignmentIsTheSector() {
        assertEquals(4096, graph.node("l0").requestAlignment());
        assertEquals(8 << 20, disk.size());
    }
}
