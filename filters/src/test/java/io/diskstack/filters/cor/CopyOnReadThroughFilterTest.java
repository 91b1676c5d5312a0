package io.diskstack.filters.cor;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.Background;
import io.diskstack.core.testing.RecordingDriver;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Copy-on-read below a pass-through filter (throttle, blkdebug) must serialise at the image that
 * holds the data: a write that reaches the image by another route while the copy is on its way
 * must never be overwritten by the stale copy.
 */
class CopyOnReadThroughFilterTest {
    @TempDir Path dir;

    static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertEquals(0, p.waitFor());
    }

    @Test
    void staleCopyLandsOverNewerWrite() throws Exception {
        io.diskstack.core.testing.Shell.requireTool("qemu-img");
        io.diskstack.core.testing.Shell.requireTool("qemu-io");
        String base = dir.resolve("base.qcow2").toString();
        String top = dir.resolve("top.qcow2").toString();
        run("qemu-img", "create", "-q", "-f", "qcow2", base, "1M");
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x6b 0 1M", base);
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "qcow2", "node-name", "base", "read-only", true,
                    "file", Map.of("driver", "file", "filename", "base.qcow2")));
            // holds the copy's read of the base: the copy is then in flight in 'top'
            g.open(opts("driver", "recorder", "node-name", "held-base", "read-only", true, "file", "base"));
            g.open(opts("driver", "qcow2", "node-name", "top", "backing", "held-base",
                    "file", Map.of("driver", "file", "filename", "top.qcow2")));
            // a pass-through filter between copy-on-read and the image (stands for throttle)
            g.open(opts("driver", "recorder", "node-name", "filter", "file", "top"));
            g.open(opts("driver", "copy-on-read", "node-name", "cor", "file", "filter"));
            BlockBackend viaCor = g.addBackend("a", "cor", true);
            BlockBackend direct = g.addBackend("b", "top", true);
            RecordingDriver.Hold copy = RecordingDriver.node(g, "held-base").hold("read");
            Background<Void> reader = Background.start("reader", () -> viaCor.read(0, ByteBuffer.allocateDirect(4096)));
            Background<Void> writer;
            try {
                copy.awaitHeld();
                ByteBuffer w = ByteBuffer.allocateDirect(65536);
                while (w.hasRemaining()) w.put((byte) 0xEE);
                w.flip();
                // a newer guest write to the same cluster, by another route, acknowledged after the copy
                writer = Background.start("writer", () -> direct.write(0, w, 0));
                writer.assertBlocked("the write must wait for the copy in flight");
            } finally {
                copy.release();
            }
            writer.join();
            reader.join();
            ByteBuffer back = ByteBuffer.allocateDirect(4096);
            direct.read(0, back);
            assertEquals((byte) 0xEE, back.get(0), "the acknowledged write was overwritten by a stale copy");
        }
    }
}
