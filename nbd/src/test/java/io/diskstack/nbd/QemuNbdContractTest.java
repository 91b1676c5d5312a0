package io.diskstack.nbd;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.core.testing.Shell;
import io.diskstack.nbd.testing.NbdPeer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;

/** The conformance suite on an nbd node served by {@code qemu-nbd} over TCP on loopback, a qcow2 image behind it. */
class QemuNbdContractTest extends BlockNodeContract {
    private NbdPeer peer;

    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        if (peer == null) {
            Path image = dir.resolve("a.qcow2");
            if (!Files.exists(image)) {
                Shell.run("qemu-img", "create", "-f", "qcow2", image.toString(), "16M").ok();
            }
            peer = NbdPeer.qemuNbd(dir, image, "qcow2");
        }
        graph.open(KeyVal.parse("driver=nbd,node-name=n0," + peer.nodeOptions(), null));
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
