package io.diskstack.filters.blkdebug;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BlkdebugTest {
    @TempDir
    Path dir;

    private BlockBackend open(BlockGraph g, Map<String, Object> extra) throws Exception {
        g.open(opts("driver", "memory", "node-name", "m0"));
        java.util.Map<String, Object> o = new java.util.LinkedHashMap<>(Map.of("driver", "blkdebug", "node-name", "dbg",
                "file", "m0"));
        o.putAll(extra);
        g.open(io.diskstack.core.options.OptionTree.flatten(o));
        return g.addBackend("d", "dbg", true);
    }

    @Test
    void injectsErrorsByRangeOnly() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend b = open(g, Map.of("inject-error", List.of(
                    Map.of("iotype", "read", "offset", "1M", "length", "4K", "errno", "EIO"))));
            b.read(0, ByteBuffer.allocate(4096));
            BlockIOException e = assertThrows(BlockIOException.class,
                    () -> b.read((1 << 20) + 100, ByteBuffer.allocate(10)));
            assertEquals(Errno.EIO, e.errno());
            assertTrue(e.getMessage().contains("blkdebug 'dbg'"), e.getMessage());
            b.write(1 << 20, ByteBuffer.allocate(10), 0);
        }
    }

    @Test
    void everyNthAndOnce() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend b = open(g, Map.of("inject-error", List.of(
                    Map.of("iotype", "write", "every", 3, "errno", 28),
                    Map.of("iotype", "flush", "once", true))));
            int failures = 0;
            for (int i = 0; i < 9; i++) {
                try {
                    b.write(i * 512L, ByteBuffer.allocate(512), 0);
                } catch (BlockIOException e) {
                    assertEquals(Errno.ENOSPC, e.errno());
                    failures++;
                }
            }
            assertEquals(3, failures);
            assertThrows(BlockIOException.class, b::flush);
            b.flush();
        }
    }

    @Test
    void corruptsReadsInRange() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend b = open(g, Map.of("inject-corrupt", List.of(Map.of("offset", 4, "length", 2))));
            b.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}), 0);
            ByteBuffer back = ByteBuffer.allocate(8);
            b.read(0, back);
            assertArrayEquals(new byte[] {1, 2, 3, 4, (byte) ~5, (byte) ~6, 7, 8}, back.array());
            assertNotEquals(5, back.get(4));
        }
    }

    @Test
    void delaysRequests() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend b = open(g, Map.of("inject-delay", List.of(Map.of("iotype", "read", "ms", 150))));
            long t0 = System.nanoTime();
            b.read(0, ByteBuffer.allocate(1));
            assertTrue(System.nanoTime() - t0 >= 140_000_000L, "the read waited");
        }
    }

    @Test
    void badRulesNameTheirKey() {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            ConfigException e = assertThrows(ConfigException.class, () -> open(g, Map.of("inject-error",
                    List.of(Map.of("iotype", "reed")))));
            assertEquals("blockdev 'dbg' (blkdebug) inject-error[0]: 'iotype' value 'reed' is not one of read, "
                    + "write, write-zeroes, discard, flush, block-status", e.getMessage());
            ConfigException e2 = assertThrows(ConfigException.class, () -> g.open(opts("driver", "blkdebug",
                    "node-name", "d2", "file", "m0", "align", 1000)));
            assertEquals("blockdev 'd2' (blkdebug): 'align' value 1000 is not a power of two", e2.getMessage());
        }
    }
}
