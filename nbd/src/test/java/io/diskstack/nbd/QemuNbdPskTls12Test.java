package io.diskstack.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.nbd.testing.NbdPeer;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The TLS 1.2 fallback: qemu-nbd held to TLS 1.2 by a GnuTLS priority string still takes our node, over (EC)DHE-PSK. */
class QemuNbdPskTls12Test {
    @TempDir
    Path dir;

    @Test
    void aTls12OnlyServerGetsAnEphemeralKeyExchange() throws Exception {
        Shell.requireTool("psktool");
        Shell.run("psktool", "-u", "alice", "-p", dir.resolve("keys.psk").toString()).ok();
        Path image = dir.resolve("a.raw");
        Shell.run("qemu-img", "create", "-f", "raw", image.toString(), "4M").ok();
        BlockGraph graph = TestGraphs.newGraph(dir);
        try (NbdPeer peer = NbdPeer.qemuNbd(dir, image, "raw", "--object", "tls-creds-psk,id=tls0,endpoint=server,dir="
                + dir + ",priority=NORMAL:-VERS-TLS1.3:+ECDHE-PSK:+DHE-PSK:+PSK", "--tls-creds", "tls0")) {
            graph.objects().create(TestGraphs.opts("qom-type", "tls-creds-psk", "id", "t0", "dir", dir.toString(),
                    "username", "alice"), dir);
            graph.open(KeyVal.parse("driver=nbd,node-name=n0,tls-creds=t0," + peer.nodeOptions(), null));
            BlockBackend disk = graph.addBackend("disk0", "n0", true);
            byte[] data = TestGraphs.randomBytes(12, 1 << 20);
            disk.write(4096, TestGraphs.direct(data), 0);
            ByteBuffer back = ByteBuffer.allocateDirect(data.length);
            disk.read(4096, back);
            assertArrayEquals(data, TestGraphs.toArray(back));
            String details = graph.node("n0").details();
            // GnuTLS has GCM with DHE-PSK only, and picks it over ECDHE-PSK with ChaCha20 or CBC
            assertTrue(details.matches(".* tls psk TLSv1\\.2 TLS_(EC)?DHE_PSK_WITH_.*"), details);
            graph.close();
            byte[] onDisk = Files.readAllBytes(image);
            assertArrayEquals(data, java.util.Arrays.copyOfRange(onDisk, 4096, 4096 + data.length), "qemu-nbd wrote it");
        } finally {
            graph.close();
        }
    }
}
