package io.diskstack.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.nbd.testing.NbdPeer;
import io.diskstack.nbd.testing.TestCertificates;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The conformance suite on an nbd node that reaches {@code qemu-nbd -k SOCK} over TLS with x509
 * certificates on a Unix socket, the certificate checked against {@code tls-hostname}.
 */
class QemuNbdX509UnixContractTest extends BlockNodeContract {
    private NbdPeer peer;
    private Path clientPki;

    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        Path server = dir.resolve("server-pki");
        clientPki = dir.resolve("client-pki");
        if (peer == null) {
            if (!Files.exists(server.resolve("server-cert.pem"))) {
                TestCertificates.make(dir, server, clientPki);
            }
            Path image = dir.resolve("a.qcow2");
            if (!Files.exists(image)) {
                Shell.run("qemu-img", "create", "-f", "qcow2", image.toString(), "16M").ok();
            }
            peer = NbdPeer.qemuNbdUnix(dir, image, "qcow2", "--object",
                    "tls-creds-x509,id=tls0,endpoint=server,dir=" + server, "--tls-creds", "tls0");
        }
        graph.objects().create(TestGraphs.opts("qom-type", "tls-creds-x509", "id", "t0", "endpoint", "client",
                "dir", clientPki.toString()), dir);
        graph.open(KeyVal.parse("driver=nbd,node-name=n0,tls-creds=t0,tls-hostname=localhost," + peer.nodeOptions(), null));
        return "n0";
    }

    @Test
    void theConnectionIsTls13WithCertificates() {
        String details = graph.node("n0").details();
        assertTrue(details.contains(" tls x509 TLSv1.3 "), details);
    }

    @Test
    void withoutTlsHostnameTheNodeIsRefusedWithOneLine() {
        ConfigException e = assertThrows(ConfigException.class, () -> graph.open(KeyVal.parse(
                "driver=nbd,node-name=n1,tls-creds=t0," + peer.nodeOptions(), null)));
        assertEquals("blockdev 'n1' (nbd): 'tls-hostname' is required with tls-creds-x509 over a Unix socket: give the name "
                + "the server's certificate carries (tls-hostname=NAME)", e.getMessage());
    }

    @Test
    void aNameTheCertificateDoesNotCarryFailsTheHandshake() {
        Exception e = assertThrows(Exception.class, () -> graph.open(KeyVal.parse(
                "driver=nbd,node-name=n1,tls-creds=t0,tls-hostname=elsewhere.example," + peer.nodeOptions(), null)));
        assertEquals("blockdev 'n1' (nbd): No subject alternative DNS name matching elsewhere.example found.",
                e.getMessage(), "the certificate check, not an echo of the option");
        assertNull(graph.node("n1"), "nothing of the refused node stays");
    }

    @AfterEach
    void stopPeer() {
        graph.close(); // first the client, so the server has no connection to wait for
        if (peer != null) {
            peer.close();
        }
    }
}
