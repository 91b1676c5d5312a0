package io.diskstack.nbd;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.nbd.testing.NbdPeer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;

/** The conformance suite on an nbd node served by {@code nbdkit memory}, over a Unix socket. */
class NbdkitMemoryContractTest extends BlockNodeContract {
    private NbdPeer peer;

    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        if (peer == null) {
            peer = NbdPeer.nbdkit(dir, "memory", "64M");
        }
        Map<String, Object> o = KeyVal.parse("driver=nbd,node-name=n0," + peer.nodeOptions(), null);
        graph.open(o);
        return "n0";
    }

    @AfterEach
    void stopPeer() {
        graph.close(); // first the client, so the server has no connection to wait for
        if (peer != null) {
            peer.close();
        }
    }
}
