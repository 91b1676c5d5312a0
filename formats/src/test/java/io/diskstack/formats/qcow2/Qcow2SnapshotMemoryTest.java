package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Snapshot operations on an image with many more L2 tables and refcount blocks than the caches
 * hold never pin more changed tables than the caches' capacity (a 4 TiB image with thousands of
 * L2 tables must not need them all in memory at once).
 */
class Qcow2SnapshotMemoryTest {
    private static final int CS = 512;
    private static final long SIZE = 64 << 20;
    /** Guest bytes one L2 table maps at 512-byte clusters. */
    private static final int SPAN = CS / 8 * CS;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    private static void assertBounded(Qcow2Node n, String op) {
        assertTrue(n.l2cache.peakDirty <= n.l2cache.capacityTables(), op + ": " + n.l2cache.peakDirty
                + " L2 tables pinned, the cache holds " + n.l2cache.capacityTables());
        assertTrue(n.refcache.peakDirty <= n.refcache.capacityTables(), op + ": " + n.refcache.peakDirty
                + " refcount blocks pinned, the cache holds " + n.refcache.capacityTables());
        n.l2cache.peakDirty = 0;
        n.refcache.peakDirty = 0;
    }

    private static void writeEverySpan(BlockBackend d, byte[] model, int seed) throws IOException {
        for (long off = 0; off < SIZE; off += SPAN) {
            byte[] b = TestGraphs.randomBytes(seed * 100_000L + off / SPAN, CS);
            d.write(off, ByteBuffer.wrap(b), 0);
            System.arraycopy(b, 0, model, (int) off, CS);
        }
    }

    @Test
    void snapshotOperationsPinNoMoreTablesThanTheCachesHold() throws IOException {
        Path img = dir.resolve("big.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=" + CS, img.toString(), Long.toString(SIZE));
        byte[] model = new byte[(int) SIZE];
        byte[] atA;
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(TestGraphs.opts("driver", "qcow2", "node-name", "q0", "l2-cache-size", "4K",
                    "refcount-cache-size", "2K", "file", Map.of("driver", "file", "filename", img.toString())));
            BlockBackend d = g.addBackend("d", "q0", true);
            Qcow2Node n = (Qcow2Node) g.node("q0");
            writeEverySpan(d, model, 1);
            atA = model.clone();
            n.l2cache.peakDirty = 0;
            n.refcache.peakDirty = 0;
            n.createSnapshot("a");
            assertBounded(n, "create");
            writeEverySpan(d, model, 2);
            n.createSnapshot("b");
            assertBounded(n, "create over copied tables");
            n.deleteSnapshot("a");
            assertBounded(n, "delete");
            writeEverySpan(d, model, 3);
            n.revertToSnapshot("b");
            assertBounded(n, "revert");
            assertTrue(n.l2cache.capacityTables() < SIZE / SPAN / 100, "the image has far more L2 tables than the cache");
        }
        Qemu.checkClean(img);
        byte[] b = writtenB(model);
        assertArrayEquals(b, Qemu.raw(img), "active image after the revert");
        Path out = dir.resolve("b.raw");
        Qemu.img("convert", "-l", "snapshot.name=b", "-O", "raw", img.toString(), out.toString());
        assertArrayEquals(b, Files.readAllBytes(out), "snapshot b");
        assertTrue(!Arrays.equals(atA, b));
    }

    /** The content snapshot b was taken with: the second round of writes. */
    private static byte[] writtenB(byte[] afterThird) {
        byte[] b = afterThird.clone();
        for (long off = 0; off < SIZE; off += SPAN) {
            System.arraycopy(TestGraphs.randomBytes(2 * 100_000L + off / SPAN, CS), 0, b, (int) off, CS);
        }
        return b;
    }
}
