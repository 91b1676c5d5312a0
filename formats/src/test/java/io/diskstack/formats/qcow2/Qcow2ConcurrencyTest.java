package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Many threads allocating, overwriting, zeroing and discarding at once; qemu-img check afterwards. */
class Qcow2ConcurrencyTest {
    @TempDir
    Path dir;

    private static void runAll(int threads, ThrowingTask task) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        CyclicBarrier start = new CyclicBarrier(threads);
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                fs.add(pool.submit(() -> {
                    start.await();
                    task.run(id);
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    interface ThrowingTask {
        void run(int id) throws Exception;
    }

    @Test
    void allocatingWritesToOneClusterLoseNothing() throws Exception {
        Qemu.require();
        for (String[] opts : List.of(new String[] {"cluster_size", "65536"},
                new String[] {"cluster_size", "65536", "extended_l2", "on"}, new String[] {"cluster_size", "4096"})) {
            Path img = dir.resolve("c" + opts.length + opts[1] + ".qcow2");
            Images.create(img, 8 << 20, opts);
            int threads = 16;
            int clusters = 4;
            int piece = 512;
            int cs = Integer.parseInt(opts[1]);
            try (BlockGraph g = TestGraphs.newGraph(dir)) {
                g.open(Images.node("q0", img));
                BlockBackend d = g.addBackend("d", "q0", true);
                // every thread writes every 16th sector of the first clusters: all collide on allocation
                runAll(threads, id -> {
                    for (int off = id * piece; off < clusters * cs; off += threads * piece) {
                        d.write(off, ByteBuffer.wrap(TestGraphs.randomBytes(off, piece)), 0);
                    }
                });
                ByteBuffer all = ByteBuffer.allocate(clusters * cs);
                d.read(0, all);
                for (int off = 0; off < clusters * cs; off += piece) {
                    byte[] got = new byte[piece];
                    all.get(off, got);
                    assertArrayEquals(TestGraphs.randomBytes(off, piece), got, "sector at " + off + " " + opts[1]);
                }
            }
            Qemu.checkClean(img);
        }
    }

    @Test
    void mixedLoadKeepsEveryThreadsData() throws Exception {
        Qemu.require();
        Path img = dir.resolve("m.qcow2");
        Images.create(img, 16 << 20, "cluster_size", "16384");
        int threads = 8;
        int region = 2 << 20;
        byte[][] models = new byte[threads][region];
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            runAll(threads, id -> {
                Random r = new Random(id);
                byte[] model = models[id];
                long base = (long) id * region;
                for (int i = 0; i < 300; i++) {
                    int off = r.nextInt(region / 512 - 64) * 512;
                    int len = 512 * (1 + r.nextInt(64));
                    switch (r.nextInt(6)) {
                        case 0, 1, 2 -> {
                            byte[] data = TestGraphs.randomBytes(r.nextLong(), len);
                            d.write(base + off, ByteBuffer.wrap(data), 0);
                            System.arraycopy(data, 0, model, off, len);
                        }
                        case 3 -> {
                            d.writeZeroes(base + off, len, r.nextBoolean() ? RequestFlags.MAY_UNMAP : 0);
                            java.util.Arrays.fill(model, off, off + len, (byte) 0);
                        }
                        case 4 -> {
                            d.discard(base + off, len);
                            ByteBuffer back = ByteBuffer.allocate(len);
                            d.read(base + off, back);
                            for (int k = 0; k < len; k++) {
                                byte now = back.get(k);
                                if (now != 0 && now != model[off + k]) {
                                    throw new AssertionError("discard left garbage at " + (base + off + k));
                                }
                                model[off + k] = now;
                            }
                        }
                        default -> {
                            ByteBuffer back = ByteBuffer.allocate(len);
                            d.read(base + off, back);
                            assertArrayEquals(java.util.Arrays.copyOfRange(model, off, off + len), back.array(),
                                    "thread " + id + " read at " + off);
                        }
                    }
                    if (i % 50 == 0) {
                        d.flush();
                    }
                }
            });
            for (int t = 0; t < threads; t++) {
                ByteBuffer back = ByteBuffer.allocate(region);
                d.read((long) t * region, back);
                assertArrayEquals(models[t], back.array(), "region of thread " + t);
            }
        }
        Qemu.checkClean(img);
        byte[] raw = Qemu.raw(img);
        for (int t = 0; t < threads; t++) {
            assertArrayEquals(models[t], java.util.Arrays.copyOfRange(raw, t * region, (t + 1) * region));
        }
        assertEquals(16 << 20, raw.length);
    }

    @Test
    void snapshotsWhileWritersRun() throws Exception {
        Qemu.require();
        Path img = dir.resolve("s.qcow2");
        Images.create(img, 8 << 20, "cluster_size", "4096");
        int writers = 4;
        int region = 2 << 20;
        byte[][] models = new byte[writers][region];
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicLong writes = new java.util.concurrent.atomic.AtomicLong();
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            io.diskstack.core.snapshot.InternalSnapshots snaps = (io.diskstack.core.snapshot.InternalSnapshots) g.node("q0");
            runAll(writers + 1, id -> {
                if (id == writers) {
                    for (int i = 0; i < 12; i++) {
                        snaps.createSnapshot("s" + i);
                        if (i % 3 == 2) {
                            snaps.deleteSnapshot("s" + (i - 1));
                        }
                        long before = writes.get();
                        Await.until("the writers to write between snapshots", () -> writes.get() >= before + writers);
                    }
                    stop.set(true);
                    return;
                }
                Random r = new Random(id);
                long base = (long) id * region;
                while (!stop.get()) {
                    int off = r.nextInt(region / 512 - 16) * 512;
                    int len = 512 * (1 + r.nextInt(16));
                    byte[] data = TestGraphs.randomBytes(r.nextLong(), len);
                    d.write(base + off, ByteBuffer.wrap(data), 0);
                    System.arraycopy(data, 0, models[id], off, len);
                    writes.incrementAndGet();
                }
            });
            for (int t = 0; t < writers; t++) {
                ByteBuffer back = ByteBuffer.allocate(region);
                d.read((long) t * region, back);
                assertArrayEquals(models[t], back.array(), "region of writer " + t);
            }
            assertEquals(8, snaps.listSnapshots().size());
        }
        Qemu.checkClean(img);
    }

    /**
     * A flush writing metadata back holds off changes only: reads go on while it waits for the
     * disk (here, a flush held in the layer below until the read is done).
     */
    @Test
    void readsGoOnWhileAFlushWaitsForTheDisk() throws Exception {
        Path img = dir.resolve("f.qcow2");
        Images.create(img, 8 << 20);
        String log = "flush-" + System.nanoTime();
        OpLogDriver.Hold hold = new OpLogDriver.Hold(new java.util.concurrent.CountDownLatch(1),
                new java.util.concurrent.CountDownLatch(1));
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(TestGraphs.opts("driver", "qcow2", "node-name", "q0", "file", java.util.Map.of("driver", "oplog",
                    "log", log, "file", java.util.Map.of("driver", "file", "filename", img.toString()))));
            BlockBackend d = g.addBackend("d", "q0", true);
            byte[] first = TestGraphs.randomBytes(1, 65536);
            d.write(0, ByteBuffer.wrap(first), 0);
            d.flush();
            // a new cluster: its L2 entry is dirty, so the next flush syncs before writing it back
            d.write(1 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(2, 65536)), 0);
            OpLogDriver.holdFlushes(log, hold);
            Future<?> flush = pool.submit(() -> {
                d.flush();
                return null;
            });
            try {
                assertEquals(true, hold.entered().await(30, TimeUnit.SECONDS), "the flush reached the disk");
                Future<byte[]> read = pool.submit(() -> {
                    ByteBuffer b = ByteBuffer.allocate(65536);
                    d.read(0, b);
                    return b.array();
                });
                assertArrayEquals(first, read.get(30, TimeUnit.SECONDS), "read while the flush waits");
                assertEquals(false, flush.isDone());
            } finally {
                hold.release().countDown();
            }
            flush.get(30, TimeUnit.SECONDS);
        } finally {
            OpLogDriver.forget(log);
            pool.shutdown();
        }
        Qemu.checkClean(img);
    }
}
