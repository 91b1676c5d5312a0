package io.diskstack.filters.cor;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.options.OptionTree;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
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
            g.open(opts("driver", "qcow2", "node-name", "top", "file", Map.of("driver", "file", "filename", "top.qcow2")));
            // a pass-through filter (stands for throttle) that is slow to forward writes
            g.open(OptionTree.flatten(Map.of("driver", "blkdebug", "node-name", "slow", "file", "top",
                    "inject-delay", List.of(Map.of("iotype", "write", "ms", 300)))));
            g.open(opts("driver", "copy-on-read", "node-name", "cor", "file", "slow"));
            BlockBackend viaCor = g.addBackend("a", "cor", true);
            BlockBackend direct = g.addBackend("b", "top", true);
            Thread reader = new Thread(() -> {
                try {
                    viaCor.read(0, ByteBuffer.allocateDirect(4096));
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            reader.start();
            Thread.sleep(100);   // the copy has read the base and is on its way down
            ByteBuffer w = ByteBuffer.allocateDirect(65536);
            while (w.hasRemaining()) w.put((byte) 0xEE);
            w.flip();
            direct.write(0, w, 0);  // a newer guest write to the same cluster, acknowledged
            reader.join();
            ByteBuffer back = ByteBuffer.allocateDirect(4096);
            direct.read(0, back);
            assertEquals((byte) 0xEE, back.get(0), "the acknowledged write was overwritten by a stale copy");
        }
    }
}
