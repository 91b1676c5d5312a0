package io.diskstack.formats.qcow2;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A writer that never flushes still has its metadata written back as it allocates: what the
 * image file holds at any moment (what a kill -9 leaves) leaks at most twice the bound of a v2
 * image (32 MiB, here 1024 clusters of 64 KiB) plus one run allocated ahead, never everything
 * written since the open, and is never corrupt.
 */
class Qcow2LeakBoundTest {
    @TempDir
    Path dir;

    @Test
    void unflushedAllocationsLeakAtMostTheBound() throws Exception {
        Qemu.require();
        Path img = dir.resolve("v2.qcow2");
        Qemu.run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=65536", img.toString(), "1G");
        int mib = 400;
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "qcow2", "node-name", "q",
                    "file", Map.of("driver", "file", "filename", "v2.qcow2")));
            BlockBackend b = g.addBackend("d", "q", true);
            ByteBuffer w = ByteBuffer.allocateDirect(1 << 20);
            for (int i = 0; i < mib; i++) {
                w.clear();
                while (w.hasRemaining()) {
                    w.put((byte) (i + 1));
                }
                w.flip();
                b.write((long) i << 20, w, 0);
            }
            Qemu.Result r = Qemu.exec("qemu-img", "check", "-U", "--output=json", img.toString());
            assertFalse(r.out().contains("\"corruptions\""), "corrupt while written: " + r.out() + r.err());
            Matcher m = Pattern.compile("\"leaks\": (\\d+)").matcher(r.out());
            long leaked = m.find() ? Long.parseLong(m.group(1)) : 0;
            long clustersWritten = (long) mib << 4;
            assertTrue(leaked <= 2 * 1024 + 256,
                    leaked + " of " + clustersWritten + " new clusters would leak on a kill -9: " + r.out());
        }
        Qemu.checkClean(img);
    }
}
