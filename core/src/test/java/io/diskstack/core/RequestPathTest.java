package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Alignment, read-modify-write serialisation and the per-node settings of the request path. */
class RequestPathTest {
    @TempDir
    Path dir;

    @Test
    void manyThreadsWritingDifferentBytesOfOneSectorLoseNothing() throws Exception {
        for (int round = 0; round < 20; round++) {
            try (BlockGraph g = TestGraphs.newGraph(dir)) {
                g.open(opts("driver", "memory", "node-name", "m0", "align", 4096));
                BlockBackend b = g.addBackend("disk0", "m0", true);
                int threads = 16;
                CountDownLatch start = new CountDownLatch(1);
                List<Thread> workers = new ArrayList<>();
                List<Throwable> errors = new java.util.concurrent.CopyOnWriteArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int id = t;
                    Thread w = new Thread(() -> {
                        try {
                            start.await();
                            // Each thread owns 8 interleaved 3-byte runs of the first sector.
                            for (int k = 0; k < 8; k++) {
                                int off = (k * threads + id) * 3;
                                byte v = (byte) (id + 1);
                                b.write(off, ByteBuffer.wrap(new byte[] {v, v, v}), 0);
                            }
                        } catch (Throwable e) {
                            errors.add(e);
                        }
                    });
                    workers.add(w);
                    w.start();
                }
                start.countDown();
                for (Thread w : workers) {
                    w.join();
                }
                assertTrue(errors.isEmpty(), errors.toString());
                ByteBuffer back = ByteBuffer.allocate(8 * threads * 3);
                b.read(0, back);
                for (int i = 0; i < back.capacity(); i++) {
                    int owner = (i / 3) % threads;
                    assertEquals(owner + 1, back.get(i), "round " + round + " byte " + i);
                }
            }
        }
    }

    @Test
    void unalignedRequestsArePaddedForTheDriver() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            // The memory driver throws if it ever sees an unaligned request or buffer.
            g.open(opts("driver", "memory", "node-name", "m0", "align", 512, "mem-align", 4096));
            BlockBackend b = g.addBackend("disk0", "m0", true);
            Random rnd = new Random(1);
            byte[] model = new byte[1 << 20];
            for (int i = 0; i < 500; i++) {
                int off = rnd.nextInt(model.length - 1);
                int len = 1 + rnd.nextInt(Math.min(10000, model.length - off));
                byte[] data = TestGraphs.randomBytes(i, len);
                if (rnd.nextInt(3) == 0) {
                    b.writeZeroes(off, len, 0);
                    java.util.Arrays.fill(model, off, off + len, (byte) 0);
                } else {
                    b.write(off, ByteBuffer.wrap(data), 0);
                    System.arraycopy(data, 0, model, off, len);
                }
            }
            ByteBuffer back = ByteBuffer.allocate(model.length);
            b.read(0, back);
            assertArrayEquals(model, back.array());
        }
    }

    @Test
    void detectZeroesTurnsZeroWritesIntoWriteZeroes() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "memory", "node-name", "m0", "detect-zeroes", "on"));
            BlockBackend b = g.addBackend("disk0", "m0", true);
            b.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 4096)), 0);
            b.write(0, ByteBuffer.allocateDirect(4096), 0);
            ByteBuffer back = ByteBuffer.allocate(4096);
            b.read(0, back);
            assertArrayEquals(new byte[4096], back.array());
        }
    }

    @Test
    void discardIgnoreKeepsData() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "memory", "node-name", "m0", "discard", "ignore"));
            BlockBackend b = g.addBackend("disk0", "m0", true);
            byte[] data = TestGraphs.randomBytes(2, 8192);
            b.write(0, ByteBuffer.wrap(data), 0);
            b.discard(0, 8192);
            ByteBuffer back = ByteBuffer.allocate(8192);
            b.read(0, back);
            assertArrayEquals(data, back.array());
        }
    }
}
