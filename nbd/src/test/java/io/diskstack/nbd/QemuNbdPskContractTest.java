package io.diskstack.nbd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.nbd.testing.NbdPeer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The conformance suite on an nbd node that reaches {@code qemu-nbd} over TLS-PSK
 * ({@code tls-creds-psk} on both sides, keys made by psktool), a qcow2 image behind it.
 */
class QemuNbdPskContractTest extends BlockNodeContract {
    private NbdPeer peer;

    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        Path keys = dir.resolve("psk");
        if (peer == null) {
            Shell.requireTool("psktool");
            Files.createDirectories(keys);
            Shell.run("psktool", "-u", "alice", "-p", keys.resolve("keys.psk").toString()).ok();
            Path image = dir.resolve("a.qcow2");
            if (!Files.exists(image)) {
                Shell.run("qemu-img", "create", "-f", "qcow2", image.toString(), "16M").ok();
            }
            peer = NbdPeer.qemuNbd(dir, image, "qcow2", "--object",
                    "tls-creds-psk,id=tls0,endpoint=server,dir=" + keys, "--tls-creds", "tls0");
        }
        graph.objects().create(TestGraphs.opts("qom-type", "tls-creds-psk", "id", "t0", "endpoint", "client",
                "dir", keys.toString(), "username", "alice"), dir);
        graph.open(KeyVal.parse("driver=nbd,node-name=n0,tls-creds=t0," + peer.nodeOptions(), null));
        return "n0";
    }

    @Test
    void theConnectionIsTls13WithAnExternalPsk() {
        String details = graph.node("n0").details();
        assertTrue(details.contains(" tls psk TLSv1.3 "), details);
    }

    @AfterEach
    void stopPeer() {
        graph.close(); // first the client, so the server has no connection to wait for
        if (peer != null) {
            peer.close();
        }
    }
}
