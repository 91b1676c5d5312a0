package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A seeded corpus of damaged images: images made by qemu-img (and one by diskstack create),
 * each mutated in the fields damage and hostility aim at (L1, L2 and refcount table entries,
 * refcounts of used clusters, the snapshot table, header fields, subcluster bitmaps, plus
 * {@link Qcow2FuzzTest}'s random mutations). For every case:
 * <ul>
 *   <li>{@code diskstack check} and {@code qemu-img check} agree: clean, leaks only, or corrupt
 *       (exit 1 or 2: corrupt, or a check that could not complete);</li>
 *   <li>every write the driver acknowledges, followed by a flush that succeeds, reads back after
 *       the image is closed and opened again;</li>
 *   <li>nothing hangs (a per-case timeout), nothing throws but one-line I/O or config errors.</li>
 * </ul>
 * A failure names the case: run {@link #runOne} with its seed to replay it.
 */
class Qcow2DamagedCorpusTest {
    private static final long SEED = 20260117;
    private static final int CASES = 400;
    private static final int CASE_TIMEOUT_SECONDS = 30;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    /** A seed image and where its tables are, for aimed mutations. */
    private record Seed(String name, byte[] bytes) {}

    private Seed qemuSeed(String name, String options, boolean compressed) throws IOException {
        Path img = dir.resolve(name);
        Qemu.img("create", "-f", "qcow2", "-o", options, img.toString(), "4M");
        Qemu.io(img, "write -P 0x11 0 300k", "write -P 0x22 1M 64k", "write -z 2M 64k");
        Qemu.img("snapshot", "-c", "s1", img.toString());
        Qemu.io(img, "write -P 0x33 64k 128k", "discard 3M 64k");
        if (compressed) {
            Path c = dir.resolve(name + ".c");
            Qemu.img("convert", "-c", "-O", "qcow2", "-o", options, img.toString(), c.toString());
            Files.move(c, img, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Qemu.io(img, "write -P 0x44 512k 8k");
        }
        return new Seed(name, Files.readAllBytes(img));
    }

    private List<Seed> seeds() throws IOException {
        List<Seed> seeds = new ArrayList<>();
        seeds.add(qemuSeed("v3-64k.qcow2", "cluster_size=65536", false));
        seeds.add(qemuSeed("v2-4k.qcow2", "compat=0.10,cluster_size=4096", false));
        seeds.add(qemuSeed("v3-4k-lazy-rc8.qcow2", "cluster_size=4096,lazy_refcounts=on,refcount_bits=8", false));
        seeds.add(qemuSeed("extl2-32k.qcow2", "cluster_size=32768,extended_l2=on", false));
        seeds.add(qemuSeed("compressed-4k.qcow2", "cluster_size=4096", true));
        Path ours = dir.resolve("diskstack.qcow2");
        Images.create(ours, 4 << 20, "cluster_size", "4096");
        Qemu.io(ours, "write -P 0x55 0 200k", "write -P 0x66 2M 16k");
        seeds.add(new Seed("diskstack.qcow2", Files.readAllBytes(ours)));
        return seeds;
    }

    @Test
    void damagedImagesAgreeWithQemuAndNeverLoseAnAcknowledgedWrite() throws Exception {
        List<Seed> seeds = seeds();
        Path shm = Path.of("/dev/shm");
        Path work = Files.isDirectory(shm) && Files.isWritable(shm) ? Files.createTempDirectory(shm, "corpus") : dir;
        ExecutorService ex = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "corpus-case");
            t.setDaemon(true);
            return t;
        });
        Map<String, Integer> outcomes = new LinkedHashMap<>();
        // -Dqcow2.corpus.replay=NAME:SEED runs that one case and keeps its image as NAME.case
        String replay = System.getProperty("qcow2.corpus.replay");
        try {
            Random master = new Random(SEED);
            for (int i = 0; i < CASES; i++) {
                long caseSeed = master.nextLong();
                Seed seed = seeds.get(i % seeds.size());
                if (replay != null) {
                    String[] r = replay.split(":");
                    seed = seeds.stream().filter(x -> x.name().equals(r[0])).findFirst().orElseThrow();
                    caseSeed = Long.parseLong(r[1]);
                    Files.write(Path.of(System.getProperty("java.io.tmpdir"), r[0] + ".case"),
                            DamagedImages.mutateQcow2(seed.bytes(), new Random(caseSeed)));
                    Files.write(Path.of(System.getProperty("java.io.tmpdir"), r[0] + ".seed"), seed.bytes());
                    i = CASES;
                }
                Seed theSeed = seed;
                long theCaseSeed = caseSeed;
                Future<String> f = ex.submit(() -> runOne(work, theSeed, theCaseSeed));
                String outcome;
                try {
                    outcome = f.get(CASE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    fail("case " + i + " (" + seed.name() + ", seed " + caseSeed + ") still running after "
                            + CASE_TIMEOUT_SECONDS + " s");
                    return;
                } catch (java.util.concurrent.ExecutionException e) {
                    throw new AssertionError("case " + i + " (" + seed.name() + ", seed " + caseSeed + "): "
                            + e.getCause(), e.getCause());
                }
                outcomes.merge(outcome, 1, Integer::sum);
            }
        } finally {
            ex.shutdownNow();
            if (!work.equals(dir)) {
                try (var files = Files.list(work)) {
                    for (Path p : files.toList()) {
                        Files.deleteIfExists(p);
                    }
                }
                Files.deleteIfExists(work);
            }
        }
        System.out.println("damaged corpus: " + outcomes + " " + new java.util.TreeMap<>(counts));
        if (replay == null) {
            assertTrue(outcomes.getOrDefault("clean", 0) > 0 && outcomes.getOrDefault("corrupt", 0) > 0
                    && outcomes.getOrDefault("leaks", 0) > 0, "the corpus covers clean, leaking and corrupt images: "
                    + outcomes);
            assertTrue(counts.getOrDefault("writes acknowledged", 0) > CASES && counts.getOrDefault("writes refused", 0)
                    > 0, "the corpus writes to damaged images, and some writes are refused: " + counts);
        }
    }

    /** What the cases did, for the summary and the coverage assertions. */
    private final Map<String, Integer> counts = new java.util.concurrent.ConcurrentHashMap<>();

    private void count(String what) {
        counts.merge(what, 1, Integer::sum);
    }

    /** One case: mutate, compare the checks, write and read back. Returns the check family. */
    private String runOne(Path work, Seed seed, long caseSeed) throws Exception {
        Random rnd = new Random(caseSeed);
        byte[] img = DamagedImages.mutateQcow2(seed.bytes(), rnd);
        Path target = work.resolve("case.qcow2");
        Files.write(target, img);
        String where = seed.name() + ", seed " + caseSeed;

        Qemu.Result q = Qemu.exec("qemu-img", "check", target.toString());
        String theirs = family(q.exit());
        count("qemu-img exit " + q.exit());
        String ours;
        String report;
        try {
            Qcow2Check.Report r = Qcow2Check.check(target, Qcow2Check.Repair.NONE);
            ours = r.checkErrors() > 0 || r.corruptions() > 0 ? "corrupt" : r.leaks() > 0 ? "leaks" : "clean";
            report = r.toString();
        } catch (ConfigException | IOException e) {
            oneLine(e, where);
            ours = "corrupt";
            report = e.getMessage();
        }
        if (!ours.equals(theirs)) {
            fail(where + ": qemu-img check says " + theirs + " (exit " + q.exit() + "), diskstack check says " + ours
                    + "\nqemu-img: " + q.out() + q.err() + "\ndiskstack: " + report);
        }
        writeAndReadBack(target, rnd, where);
        return ours;
    }

    private static String family(int exit) {
        return switch (exit) {
            case 0 -> "clean";
            case 3 -> "leaks";
            default -> "corrupt";
        };
    }

    private static void oneLine(Exception e, String where) {
        String m = String.valueOf(e.getMessage());
        if (m.contains("\n") || m.contains("\r")) {
            fail(where + ": a message of more than one line: " + m);
        }
    }

    /**
     * Writes a few ranges (new clusters, in-place, partial), flushes, closes, reopens read-only and
     * compares every write that was acknowledged before a successful flush.
     */
    private void writeAndReadBack(Path target, Random rnd, String where) throws Exception {
        Map<Long, byte[]> acknowledged = new LinkedHashMap<>();
        boolean flushed = false;
        try (BlockGraph g = TestGraphs.newGraph(target.getParent())) {
            Map<String, Object> o = Images.node("q0", target);
            o.put("backing", "");
            try {
                g.open(o);
            } catch (ConfigException e) {
                oneLine(e, where);
                count("writable opens refused");
                return;
            }
            BlockBackend d = g.addBackend("d", "q0", true);
            long size = d.size();
            // disjoint ranges: 16 slots of 256 KiB, each written at most once
            int slots = (int) Math.min(16, size / (256 << 10));
            java.util.Set<Long> used = new java.util.HashSet<>();
            for (int k = 0; k < 4 && slots > 0; k++) {
                long slot = rnd.nextInt(slots);
                long at = slot * (256 << 10) + rnd.nextInt(64) * 512L;
                byte[] data = TestGraphs.randomBytes(rnd.nextLong(), 512 * (1 + rnd.nextInt(256)));
                if (!used.add(slot)) {
                    continue;
                }
                try {
                    d.write(at, ByteBuffer.wrap(data), 0);
                    acknowledged.put(at, data);
                    count("writes acknowledged");
                } catch (IOException e) {
                    oneLine(e, where);
                    count("writes refused");
                }
            }
            try {
                d.flush();
                flushed = true;
            } catch (IOException e) {
                oneLine(e, where);
            }
        } catch (IOException e) {
            oneLine(e, where);
            flushed = false;
        }
        if (!flushed || acknowledged.isEmpty()) {
            return;
        }
        try (BlockGraph g = TestGraphs.newGraph(target.getParent())) {
            Map<String, Object> o = Images.node("q0", target);
            o.put("backing", "");
            o.put("read-only", true);
            g.open(o);
            BlockBackend d = g.addBackend("d", "q0", false);
            count("images read back");
            for (Map.Entry<Long, byte[]> w : acknowledged.entrySet()) {
                ByteBuffer b = ByteBuffer.allocate(w.getValue().length);
                d.read(w.getKey(), b);
                assertArrayEquals(w.getValue(), b.array(), where + ": the acknowledged write at guest offset "
                        + w.getKey() + " (" + w.getValue().length + " bytes) reads back different");
            }
        } catch (ConfigException | IOException e) {
            fail(where + ": an image with acknowledged writes cannot be read back: " + e.getMessage());
        }
    }
}
