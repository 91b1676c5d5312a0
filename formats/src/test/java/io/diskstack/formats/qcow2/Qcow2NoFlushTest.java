package io.diskstack.formats.qcow2;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cache.no-flush} skips only the sync to disk (QEMU's flush-to-disk): a flush still writes
 * qcow2's cached L2 and refcount updates to the file, so what a kill -9 would leave behind (the
 * host has everything the process wrote) reads back.
 */
class Qcow2NoFlushTest {
    @TempDir
    Path dir;

    @Test
    void flushWritesCachedMetadataEvenWithNoFlush() throws Exception {
        Qemu.require();
        String img = dir.resolve("t.qcow2").toString();
        Qemu.run("qemu-img", "create", "-q", "-f", "qcow2", img, "1M");
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "qcow2", "node-name", "q", "cache.no-flush", true,
                    "file", Map.of("driver", "file", "filename", "t.qcow2")));
            BlockBackend b = g.addBackend("d", "q", true);
            ByteBuffer w = ByteBuffer.allocateDirect(65536);
            while (w.hasRemaining()) {
                w.put((byte) 0xEE);
            }
            w.flip();
            b.write(0, w, 0);
            b.flush();
            String out = Qemu.run("qemu-io", "-U", "-r", "-f", "qcow2", "-c", "read -P 0xee 0 64k", img);
            assertFalse(out.contains("Pattern verification failed"), "after a flush the image reads as unwritten: " + out);
        }
    }
}
