package io.diskstack.core.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.RequestFlags;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The conformance suite every driver's test subclasses (after Lucene's BaseDirectoryTestCase):
 * supply a graph whose top node is a writable disk of at least 4 MiB that reads as zeroes when
 * new, and inherit the read/write/zero/discard/flush/unaligned/concurrency/bounds checks.
 */
public abstract class BlockNodeContract {
    @TempDir
    protected Path dir;
    protected BlockGraph graph;
    protected BlockBackend disk;

    /**
     * Opens the nodes under test in {@code graph} (files go in {@code dir}) and returns the
     * node-name of the top node. Called again after a close to check persistence, with the same
     * folder: create images only if they are missing.
     */
    protected abstract String openNodes(BlockGraph graph, Path dir) throws IOException;

    /** False for nodes whose data does not survive closing (in-memory ones). */
    protected boolean persists() {
        return true;
    }

    @BeforeEach
    void openDisk() throws IOException {
        graph = TestGraphs.newGraph(dir);
        disk = graph.addBackend("disk0", openNodes(graph, dir), true);
    }

    @AfterEach
    void closeDisk() {
        if (graph != null) {
            graph.close();
        }
    }

    protected void reopen() throws IOException {
        assertTrue(graph.closeAndReport(), "closing cleanly");
        graph = TestGraphs.newGraph(dir);
        disk = graph.addBackend("disk0", openNodes(graph, dir), true);
    }

    protected byte[] read(long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(length);
        disk.read(offset, b);
        assertEquals(b.limit(), b.position(), "read leaves the position at the limit");
        return TestGraphs.toArray(b);
    }

    protected void write(long offset, byte[] data) throws IOException {
        ByteBuffer b = TestGraphs.direct(data);
        disk.write(offset, b, 0);
        assertEquals(b.limit(), b.position(), "write leaves the position at the limit");
    }

    @Test
    void sizeIsAtLeastFourMebibytes() {
        assertTrue(disk.size() >= 4 << 20, "size " + disk.size());
    }

    @Test
    void newDiskReadsZeroes() throws IOException {
        assertArrayEquals(new byte[65536], read(0, 65536));
        assertArrayEquals(new byte[4096], read(disk.size() - 4096, 4096));
    }

    @Test
    void alignedWritesReadBack() throws IOException {
        long[] offsets = {0, 4096, 65536, 1 << 20, disk.size() - 8192};
        for (int i = 0; i < offsets.length; i++) {
            byte[] data = TestGraphs.randomBytes(i, 8192);
            write(offsets[i], data);
            assertArrayEquals(data, read(offsets[i], data.length), "at " + offsets[i]);
        }
        assertArrayEquals(new byte[4096], read(8192 + 4096, 4096), "untouched bytes stay zero");
    }

    @Test
    void unalignedWritesReadBack() throws IOException {
        byte[] data = TestGraphs.randomBytes(7, 3000);
        write(1000, data);
        assertArrayEquals(data, read(1000, 3000));
        assertArrayEquals(new byte[1000], read(0, 1000), "bytes before stay zero");
        assertArrayEquals(new byte[96], read(4000, 96), "bytes after stay zero");
        byte[] one = {42};
        write(5, one);
        assertEquals(42, read(5, 1)[0]);
        assertArrayEquals(java.util.Arrays.copyOfRange(data, 0, 10), read(1000, 10));
    }

    @Test
    void heapBuffersWork() throws IOException {
        byte[] data = TestGraphs.randomBytes(3, 10000);
        disk.write(777, ByteBuffer.wrap(data), 0);
        ByteBuffer back = ByteBuffer.allocate(10000);
        disk.read(777, back);
        assertArrayEquals(data, back.array());
    }

    @Test
    void buffersAtOddPositionsWork() throws IOException {
        byte[] data = TestGraphs.randomBytes(4, 4096);
        ByteBuffer src = ByteBuffer.allocateDirect(4096 + 3);
        src.position(3);
        src.put(data);
        src.position(3);
        disk.write(8192, src, 0);
        ByteBuffer dst = ByteBuffer.allocateDirect(4096 + 5);
        dst.position(5);
        disk.read(8192, dst);
        dst.position(5);
        byte[] back = new byte[4096];
        dst.get(back);
        assertArrayEquals(data, back);
    }

    @Test
    void randomOperationsMatchAModel() throws IOException {
        int span = 1 << 20;
        byte[] model = new byte[span];
        Random rnd = new Random(42);
        for (int i = 0; i < 300; i++) {
            int off = rnd.nextInt(span - 1);
            int len = 1 + rnd.nextInt(Math.min(70000, span - off));
            switch (rnd.nextInt(4)) {
                case 0, 1 -> {
                    byte[] data = TestGraphs.randomBytes(i, len);
                    write(off, data);
                    System.arraycopy(data, 0, model, off, len);
                }
                case 2 -> {
                    disk.writeZeroes(off, len, rnd.nextBoolean() ? RequestFlags.MAY_UNMAP : 0);
                    java.util.Arrays.fill(model, off, off + len, (byte) 0);
                }
                default -> assertArrayEquals(java.util.Arrays.copyOfRange(model, off, off + len), read(off, len),
                        "read " + off + "+" + len + " after " + i + " operations");
            }
        }
        assertArrayEquals(model, read(0, span));
    }

    @Test
    void writeZeroesReadsZeroes() throws IOException {
        byte[] data = TestGraphs.randomBytes(5, 256 * 1024);
        write(0, data);
        disk.writeZeroes(65536, 65536, 0);
        disk.writeZeroes(131072 + 100, 5000, RequestFlags.MAY_UNMAP);
        byte[] back = read(0, data.length);
        for (int i = 0; i < back.length; i++) {
            boolean zeroed = (i >= 65536 && i < 131072) || (i >= 131172 && i < 136172);
            assertEquals(zeroed ? 0 : data[i], back[i], "byte " + i);
        }
    }

    @Test
    void discardLeavesNeighboursAlone() throws IOException {
        byte[] data = TestGraphs.randomBytes(6, 3 << 20);
        write(0, data);
        disk.discard(1 << 20, 1 << 20);
        byte[] back = read(0, data.length);
        for (int i = 0; i < back.length; i++) {
            if (i < (1 << 20) || i >= (2 << 20)) {
                assertEquals(data[i], back[i], "byte " + i + " outside the discarded range");
            } else if (back[i] != 0 && back[i] != data[i]) {
                throw new AssertionError("discarded byte " + i + " is neither old data nor zero");
            }
        }
    }

    @Test
    void flushSucceeds() throws IOException {
        write(0, TestGraphs.randomBytes(8, 4096));
        disk.flush();
        disk.write(4096, TestGraphs.direct(TestGraphs.randomBytes(9, 4096)), RequestFlags.FUA);
    }

    @Test
    void requestsPastTheEndFail() {
        long size = disk.size();
        assertThrows(BlockIOException.class, () -> read(size - 10, 20));
        assertThrows(BlockIOException.class, () -> write(size, new byte[1]));
        assertThrows(BlockIOException.class, () -> disk.writeZeroes(size - 512, 1024, 0));
        assertThrows(BlockIOException.class, () -> read(-1, 1));
    }

    @Test
    void concurrentDisjointWritesAllLand() throws Exception {
        int threads = 8;
        int perThread = 64;
        int block = 4096;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                futures.add(pool.submit(() -> {
                    for (int i = 0; i < perThread; i++) {
                        long off = ((long) i * threads + id) * block + (id % 2 == 0 ? 0 : 0);
                        write(off, TestGraphs.randomBytes(id * 1000L + i, block));
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdown();
        }
        for (int t = 0; t < threads; t++) {
            for (int i = 0; i < perThread; i++) {
                long off = ((long) i * threads + t) * block;
                assertArrayEquals(TestGraphs.randomBytes(t * 1000L + i, block), read(off, block), "block " + off);
            }
        }
    }

    @Test
    void concurrentUnalignedWritesToOneSectorKeepEveryByte() throws Exception {
        int threads = 8;
        int bytes = 512;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                futures.add(pool.submit(() -> {
                    for (int i = id; i < bytes; i += threads) {
                        write(4096 + i, new byte[] {(byte) (i * 7 + 1)});
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdown();
        }
        byte[] back = read(4096, bytes);
        for (int i = 0; i < bytes; i++) {
            assertEquals((byte) (i * 7 + 1), back[i], "byte " + i + " lost by a concurrent read-modify-write");
        }
    }

    @Test
    void blockStatusCoversTheDisk() throws IOException {
        write(1 << 20, TestGraphs.randomBytes(10, 65536));
        long pos = 0;
        int extents = 0;
        while (pos < disk.size()) {
            BlockStatus s = disk.blockStatus(pos, disk.size() - pos);
            assertTrue(s.length() > 0 && pos + s.length() <= disk.size(), "extent " + pos + "+" + s.length());
            if (pos <= (1 << 20) && (1 << 20) < pos + s.length()) {
                assertTrue(s.isData() || !s.isZero(), "written range must not report zero: " + s);
            }
            pos += s.length();
            extents++;
        }
        assertEquals(disk.size(), pos);
        assertTrue(extents < 1000, "block status returns large extents, got " + extents);
    }

    @Test
    void dataSurvivesReopen() throws IOException {
        if (!persists()) {
            return;
        }
        byte[] data = TestGraphs.randomBytes(11, 100_000);
        write(12345, data);
        reopen();
        assertArrayEquals(data, read(12345, data.length));
    }
}
