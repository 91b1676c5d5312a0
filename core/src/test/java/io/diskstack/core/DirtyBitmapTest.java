package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DirtyBitmapTest {
    @TempDir
    Path dir;

    @Test
    void marksWholeGranulesAndHandsThemOutInRuns() {
        DirtyBitmap b = new DirtyBitmap(65536);
        b.mark(100, 10);
        b.mark(65536 * 3 - 1, 2);
        assertEquals(3 * 65536, b.dirtyBytes());
        assertArrayEquals(new long[] {0, 65536}, b.takeNext(0, 1 << 20));
        assertArrayEquals(new long[] {2 * 65536, 2 * 65536}, b.takeNext(0, 1 << 20));
        assertNull(b.takeNext(0, 1 << 20));
        assertEquals(0, b.dirtyBytes());
    }

    @Test
    void theRequestPathMarksWritesZeroesAndDiscardsOfTheNode() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockNode m = g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "passthrough", "node-name", "p0", "file", "m0"));
            BlockBackend d = g.addBackend("d0", "p0", true);
            DirtyBitmap b = new DirtyBitmap(4096);
            g.addDirtyBitmap(m, b);
            d.write(8192, ByteBuffer.allocate(10), 0);
            d.writeZeroes(16384, 4096, 0);
            d.discard(0, 4096);
            assertEquals(3 * 4096, b.dirtyBytes());
            g.removeDirtyBitmap(m, b);
            d.write(65536, ByteBuffer.allocate(10), 0);
            assertEquals(3 * 4096, b.dirtyBytes(), "no longer tracked");
        }
    }
}
