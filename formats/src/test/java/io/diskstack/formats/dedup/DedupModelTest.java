package io.diskstack.formats.dedup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ImageCheckContext;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Random writes, overwrites, zero writes and discards, with a controlled share of blocks whose
 * content is already on the disk, against an in-memory reference of block contents; with flushes
 * and reopens in between. The disk always reads as the reference, the device checks clean, and
 * the physical blocks in use are exactly the distinct non-zero contents the reference holds.
 */
class DedupModelTest {
    private static final int BLOCKS = 2048;

    @TempDir
    Path dir;
    private BlockGraph graph;

    @AfterEach
    void close() {
        if (graph != null) {
            graph.close();
        }
    }

    private static byte[] content(int id, int blockSize) {
        return id == 0 ? new byte[blockSize] : TestGraphs.randomBytes(id * 31L + 7, blockSize);
    }

    private BlockBackend open(int blockSize) throws IOException {
        graph = TestGraphs.newGraph(dir);
        return DedupTesting.open(graph, dir, "cache-size", "256K", "no-sync", true);
    }

    /**
     * A refcount stops below 65535: one content written 100 000 times is stored twice, the index
     * then names the newer copy, and overwriting the lot frees both. The refcount fills up in the
     * middle of a 1 MiB write (one block of it written first shifts the count), where more than
     * one block of the write would need the new copy.
     */
    @Test
    void aBlockSharedMoreThanARefcountHoldsIsStoredAgain() throws IOException {
        int blocks = 100_000;
        DedupTesting.create(dir, (long) blocks * 4096, 4096);
        BlockBackend disk = open(4096);
        ByteBuffer same = ByteBuffer.allocateDirect(1 << 20);
        for (int i = 0; i < 256; i++) {
            same.put(content(9, 4096));
        }
        disk.write((long) (blocks - 1) * 4096, same.clear().limit(4096), 0);
        for (long off = 0; off < (long) (blocks - 1) * 4096; off += 1 << 20) {
            int len = (int) Math.min(1 << 20, (long) (blocks - 1) * 4096 - off);
            disk.write(off, same.clear().limit(len), 0);
        }
        var stats = DedupTesting.node(graph).stats();
        assertEquals(2L * 4096, stats.get("dedup.physical-bytes"), stats.toString());
        ImageCheckContext.Report r = DedupCheck.run(DedupTesting.node(graph), ImageCheckContext.Repair.NONE);
        assertTrue(r.isClean(), r.problems().toString());
        ByteBuffer back = ByteBuffer.allocate(4096);
        disk.read((long) (blocks - 1) * 4096, back);
        assertArrayEquals(content(9, 4096), back.array());
        disk.writeZeroes(0, (long) blocks * 4096, RequestFlags.MAY_UNMAP);
        assertEquals(0L, DedupTesting.node(graph).stats().get("dedup.physical-bytes"));
        assertTrue(DedupCheck.run(DedupTesting.node(graph), ImageCheckContext.Repair.NONE).isClean());
    }

    @ParameterizedTest(name = "{0}% duplicates, {1}-byte blocks")
    @CsvSource({"0, 4096", "50, 4096", "90, 4096", "50, 16384"})
    void contentsAndPhysicalUseMatchTheReference(int duplicatePercent, int blockSize) throws IOException {
        DedupTesting.create(dir, (long) BLOCKS * blockSize, blockSize);
        BlockBackend disk = open(blockSize);
        int[] model = new int[BLOCKS];
        int nextId = 1;
        Random rnd = new Random(duplicatePercent * 1000L + blockSize);
        for (int op = 0; op < 600; op++) {
            int start = rnd.nextInt(BLOCKS);
            int n = 1 + rnd.nextInt(Math.min(64, BLOCKS - start));
            int kind = rnd.nextInt(20);
            if (kind < 14) {
                ByteBuffer buf = ByteBuffer.allocateDirect(n * blockSize);
                for (int i = 0; i < n; i++) {
                    int id;
                    if (rnd.nextInt(100) < 3) {
                        id = 0;
                    } else if (nextId > 1 && rnd.nextInt(100) < duplicatePercent) {
                        id = 1 + rnd.nextInt(nextId - 1);
                    } else {
                        id = nextId++;
                    }
                    model[start + i] = id;
                    buf.put(content(id, blockSize));
                }
                disk.write((long) start * blockSize, buf.flip(), 0);
            } else if (kind < 16) {
                disk.discard((long) start * blockSize, (long) n * blockSize);
                Arrays.fill(model, start, start + n, 0);
            } else if (kind < 18) {
                disk.writeZeroes((long) start * blockSize, (long) n * blockSize, rnd.nextBoolean() ? RequestFlags.MAY_UNMAP : 0);
                Arrays.fill(model, start, start + n, 0);
            } else if (kind < 19) {
                disk.flush();
            } else {
                graph.close();
                disk = open(blockSize);
            }
        }
        ByteBuffer all = ByteBuffer.allocateDirect(BLOCKS * blockSize);
        disk.read(0, all);
        for (int b = 0; b < BLOCKS; b++) {
            byte[] got = new byte[blockSize];
            all.get(b * blockSize, got);
            assertArrayEquals(content(model[b], blockSize), got, "block " + b);
        }
        Set<Integer> distinct = new HashSet<>();
        long mapped = 0;
        for (int id : model) {
            if (id != 0) {
                distinct.add(id);
                mapped++;
            }
        }
        var stats = DedupTesting.node(graph).stats();
        assertEquals((long) distinct.size() * blockSize, stats.get("dedup.physical-bytes"), "physical use");
        assertEquals(mapped * blockSize, stats.get("dedup.logical-bytes"), "logical use");
        assertTrue(duplicatePercent == 0 || distinct.size() < mapped, "the workload had duplicates");
        ImageCheckContext.Report r = DedupCheck.run(DedupTesting.node(graph), ImageCheckContext.Repair.NONE);
        assertTrue(r.isClean(), r.problems().toString());
        assertEquals(distinct.size(), r.allocated());
        graph.close();
        disk = open(blockSize);
        assertEquals((long) distinct.size() * blockSize, DedupTesting.node(graph).stats().get("dedup.physical-bytes"),
                "physical use after a reopen");
    }
}
