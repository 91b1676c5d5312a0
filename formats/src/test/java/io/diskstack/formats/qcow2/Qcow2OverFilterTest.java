package io.diskstack.formats.qcow2;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A filter between qcow2 and its file (throttle, blkdebug) grows with the file, so qcow2 can allocate. */
class Qcow2OverFilterTest {
    @TempDir
    Path dir;

    @Test
    void qcow2AllocatesThroughAFilterOverItsFile() throws Exception {
        Qemu.require();
        Qemu.run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("t.qcow2").toString(), "16M");
        byte[] data = TestGraphs.randomBytes(1, 4 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "qcow2", "node-name", "q", "file", Map.of("driver", "passthrough",
                    "file", Map.of("driver", "file", "filename", "t.qcow2"))));
            assertTrue(g.node("#q.file").isGrowable(), "a filter over a host file grows with it");
            BlockBackend b = g.addBackend("d", "q", true);
            b.write(1 << 20, ByteBuffer.wrap(data), 0);
            ByteBuffer back = ByteBuffer.allocate(data.length);
            b.read(1 << 20, back);
            assertArrayEquals(data, back.array());
        }
        Qemu.run("qemu-img", "check", "-q", dir.resolve("t.qcow2").toString());
    }
}
