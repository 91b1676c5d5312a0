package io.diskstack.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.Errno;
import io.diskstack.core.ExportGuard;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.Stack;
import io.diskstack.core.snapshot.ExternalSnapshotCommands;
import io.diskstack.core.snapshot.InternalSnapshotCommands;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.nbd.testing.NbdPeer;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the shape model makes of an nbd node: no internal snapshots, external ones only with overlay-dir=. */
class NbdShapeTest {
    @TempDir
    Path dir;

    @Test
    void snapshotsOfAnNbdNode() throws Exception {
        try (NbdPeer peer = NbdPeer.nbdkit(dir, "memory", "8M")) {
            Files.writeString(dir.resolve("config.json"), """
                    {"blockdev": [{"driver": "nbd", "node-name": "n0", %s}],
                     "exports": [{"id": "disk0", "node-name": "n0", "writable": true}]}
                    """.formatted(peer.jsonOptions()));
            Stack stack = Stack.open(ConfigReader.readFile(dir.resolve("config.json")), DriverRegistry.load());
            try {
                BlockBackend disk = stack.graph().backend("disk0");
                io.diskstack.core.ConfigException internal = assertThrows(io.diskstack.core.ConfigException.class,
                        () -> new InternalSnapshotCommands(stack, disk, ExportGuard.NONE).create("s1"));
                assertEquals(Errno.EINVAL, internal.errno());
                assertTrue(internal.getMessage().contains("'n0' (nbd)"), internal.getMessage());
                ExternalSnapshotCommands external = new ExternalSnapshotCommands(stack, "disk0");
                BlockIOException noDir = assertThrows(BlockIOException.class, () -> external.take("s1"));
                assertEquals(Errno.EINVAL, noDir.errno());
                assertEquals("node 'n0' has no image file to put an overlay beside: give a folder with overlay-dir=",
                        noDir.getMessage());
                Files.createDirectories(dir.resolve("overlays"));
                external.take("name=s1,overlay-dir=" + dir.resolve("overlays"));
                byte[] data = TestGraphs.randomBytes(4, 4096);
                disk.write(0, TestGraphs.direct(data), 0);
                ByteBuffer back = ByteBuffer.allocateDirect(4096);
                disk.read(0, back);
                assertEquals(ByteBuffer.wrap(data), back.flip());
                assertTrue(Files.list(dir.resolve("overlays")).anyMatch(p -> p.toString().endsWith(".qcow2")));
                String header = new String(Files.readAllBytes(Files.list(dir.resolve("overlays")).findFirst().orElseThrow()),
                        java.nio.charset.StandardCharsets.ISO_8859_1);
                assertTrue(header.contains("nbd+unix:///?socket="), "the overlay names the export by its URL");
            } finally {
                stack.close();
            }
        }
    }
}
