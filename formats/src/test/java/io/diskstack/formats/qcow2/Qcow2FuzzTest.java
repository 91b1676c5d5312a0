package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutates valid images (header fields, extensions, L1/L2 and refcount tables, snapshot table,
 * truncation) thousands of times and opens, reads, writes, snapshots and checks each one. The
 * only acceptable outcomes are success, a ConfigException with a one-line message, or an
 * IOException from the data path: never another exception, an OutOfMemoryError or a hang.
 */
class Qcow2FuzzTest {
    private static final long BUDGET_NANOS = 25_000_000_000L;
    private static final int ITERATIONS = 3000;

    private static final io.diskstack.core.DriverRegistry DRIVERS = io.diskstack.core.DriverRegistry.load();

    @TempDir
    Path dir;

    private byte[] seedImage(String name, String... options) throws IOException {
        Path img = dir.resolve(name);
        Images.create(img, 2 << 20, options);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 300_000)), 0);
            ((InternalSnapshots) g.node("q0")).createSnapshot("s1");
            d.write(600_000, ByteBuffer.wrap(TestGraphs.randomBytes(2, 100_000)), 0);
            d.writeZeroes(1 << 20, 65536, 0);
        }
        return Files.readAllBytes(img);
    }

    @Test
    void mutatedImagesNeverCrashTheDriver() throws Exception {
        List<byte[]> seeds = new ArrayList<>();
        seeds.add(seedImage("a.qcow2", "cluster_size", "4096"));
        seeds.add(seedImage("b.qcow2", "cluster_size", "512", "compat", "0.10"));
        seeds.add(seedImage("c.qcow2", "cluster_size", "16384", "extended_l2", "on", "refcount_bits", "8"));
        Random rnd = new Random(20261125);
        // tmpfs where there is one: the writable half flushes, and fsync on a disk costs milliseconds
        Path shm = Path.of("/dev/shm");
        Path work = Files.isDirectory(shm) && Files.isWritable(shm) ? Files.createTempDirectory(shm, "qcow2-fuzz") : dir;
        Path target = work.resolve("fuzz.qcow2");
        long start = System.nanoTime();
        int opened = 0;
        int rejected = 0;
        int iterations = 0;
        for (; iterations < ITERATIONS && System.nanoTime() - start < BUDGET_NANOS; iterations++) {
            byte[] img = seeds.get(rnd.nextInt(seeds.size())).clone();
            img = mutate(img, rnd);
            Files.write(target, img);
            long t0 = System.nanoTime();
            try {
                if (exercise(target, rnd.nextBoolean())) {
                    opened++;
                } else {
                    rejected++;
                }
            } catch (Throwable t) {
                throw new AssertionError("iteration " + iterations + ": " + t, t);
            }
            long took = (System.nanoTime() - t0) / 1_000_000;
            // a hang, not a slow machine: generous, so a loaded CI host does not fail it
            assertTrue(took < 30_000, "iteration " + iterations + " took " + took + " ms");
        }
        Files.deleteIfExists(target);
        if (!work.equals(dir)) {
            Files.deleteIfExists(work);
        }
        System.out.println("fuzz: " + iterations + " images, " + opened + " opened, " + rejected + " rejected");
        assertTrue(iterations >= 1000, "ran only " + iterations + " iterations");
        assertTrue(opened > 0 && rejected > 0, "opened " + opened + ", rejected " + rejected);
    }

    /** True if the image opened; false if it was rejected with a proper message. */
    private boolean exercise(Path target, boolean writable) throws Exception {
        try (BlockGraph g = new BlockGraph(DRIVERS, io.diskstack.core.objects.ObjectRegistry.load(), target.getParent())) {
            Map<String, Object> o = Images.node("q0", target);
            o.put("read-only", !writable);
            o.put("backing", "");
            try {
                g.open(o);
            } catch (ConfigException e) {
                assertFalse(e.getMessage().contains("\n"), e.getMessage());
                return false;
            }
            BlockBackend d = g.addBackend("d", "q0", writable);
            long size = Math.min(d.size(), 4 << 20);
            try {
                ByteBuffer b = ByteBuffer.allocate((int) Math.min(size, 1 << 20));
                d.read(0, b);
                if (writable && size >= 8192) {
                    d.write(4096, ByteBuffer.wrap(new byte[4096]), 0);
                    d.writeZeroes(0, 4096, 0);
                    d.flush();
                }
                InternalSnapshots s = (InternalSnapshots) g.node("q0");
                for (InternalSnapshots.Snapshot snap : s.listSnapshots()) {
                    try (InternalSnapshots.SnapshotReader r = s.openSnapshot(snap.id())) {
                        r.read(0, ByteBuffer.allocate((int) Math.min(r.size(), 65536)));
                    }
                }
                Qcow2Check.run((Qcow2Node) g.node("q0"), false);
            } catch (IOException | ConfigException e) {
                assertFalse(String.valueOf(e.getMessage()).contains("\n"), e.getMessage());
            }
            return true;
        }
    }

    static byte[] mutate(byte[] img, Random rnd) {
        ByteBuffer b = ByteBuffer.wrap(img);
        int clusterBits = b.getInt(20);
        int cs = 1 << Math.min(Math.max(clusterBits, 9), 21);
        int kind = rnd.nextInt(10);
        switch (kind) {
            case 0 -> { // a header field set to an extreme value
                int[] fields = {4, 8, 16, 20, 24, 32, 36, 40, 48, 56, 60, 64, 72, 80, 88, 96, 100};
                int f = fields[rnd.nextInt(fields.length)];
                long[] values = {0, 1, -1, 0x7fffffff, 0xffffffffL, 1L << 40, Long.MAX_VALUE, cs, cs - 1,
                    img.length, img.length + cs, rnd.nextLong()};
                long v = values[rnd.nextInt(values.length)];
                boolean wide = f == 8 || f == 24 || f == 40 || f == 48 || f == 64 || f == 72 || f == 80 || f == 88;
                if (wide) {
                    b.putLong(f, v);
                } else {
                    b.putInt(f, (int) v);
                }
            }
            case 1, 2 -> flip(img, rnd, 0, Math.min(img.length, 1024), 1 + rnd.nextInt(4));
            case 3 -> flipInTable(img, rnd, b.getLong(40), 64);
            case 4 -> flipInTable(img, rnd, b.getLong(48), 64);
            case 5 -> flipInTable(img, rnd, b.getLong(64), 128);
            case 6 -> { // a random cluster (an L2 table or refcount block, often)
                int clusters = Math.max(1, img.length / cs);
                int c = rnd.nextInt(clusters);
                flip(img, rnd, c * cs, Math.min(img.length, (c + 1) * cs), 1 + rnd.nextInt(8));
            }
            case 7 -> { // a whole 8-byte entry set to garbage somewhere past the header
                int at = cs + rnd.nextInt(Math.max(1, img.length - cs - 8)) & ~7;
                if (at + 8 <= img.length) {
                    b.putLong(at, rnd.nextLong());
                }
            }
            case 8 -> { // truncation
                return java.util.Arrays.copyOf(img, rnd.nextInt(img.length));
            }
            default -> { // several random bytes anywhere
                flip(img, rnd, 0, img.length, 1 + rnd.nextInt(16));
            }
        }
        return img;
    }

    private static void flipInTable(byte[] img, Random rnd, long offset, int span) {
        if (offset > 0 && offset < img.length) {
            flip(img, rnd, (int) offset, (int) Math.min(img.length, offset + span), 1 + rnd.nextInt(3));
        } else {
            flip(img, rnd, 0, 128, 1);
        }
    }

    private static void flip(byte[] img, Random rnd, int from, int to, int count) {
        if (to <= from) {
            return;
        }
        for (int i = 0; i < count; i++) {
            int at = from + rnd.nextInt(to - from);
            img[at] ^= (byte) (1 << rnd.nextInt(8));
        }
    }
}
