package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.RequestFlags;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Power loss: a disk may keep any subset of the writes issued since the last completed flush.
 * Records every operation a workload sends to the image file (new L2 tables, L2 copies after a
 * snapshot, new refcount blocks, allocations at the end of the file), then rebuilds the file as
 * a power loss at many points could leave it (the flushed prefix plus only the newest write, or
 * plus a random subset of the unflushed ones) and has qemu-img check each: leaks are allowed,
 * corruption is not.
 */
class Qcow2PowerLossTest {
    private static final int CRASH_POINTS = 90;

    @TempDir
    Path dir;

    private final String logName = "powerloss-" + System.nanoTime();

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    @AfterEach
    void forget() {
        OpLogDriver.forget(logName);
    }

    private static void workload(BlockBackend d, InternalSnapshots s, long size, Random r) throws IOException {
        for (int i = 0; i < 90; i++) {
            int kind = r.nextInt(10);
            if (kind < 5) {
                // whole clusters, 4 KiB aligned: a multi-cluster allocation, maybe at the end of the file
                long off = r.nextLong(size / 4096) * 4096;
                d.write(off, ByteBuffer.wrap(TestGraphs.randomBytes(i, 4096)), 0);
            } else if (kind < 8) {
                // part of a cluster: a single data cluster
                long off = r.nextLong(size / 512 - 2) * 512 + 100;
                d.write(off, ByteBuffer.wrap(TestGraphs.randomBytes(i, 700)), 0);
            } else if (kind < 9) {
                long off = r.nextLong(size / 4096) * 4096;
                d.writeZeroes(off, 4096, RequestFlags.MAY_UNMAP);
            } else {
                d.flush();
            }
            if (i == 45) {
                s.createSnapshot("mid");
            }
        }
    }

    private static boolean onlyCopiedFlags(Qemu.Result c) {
        return (c.err() + c.out()).lines().filter(l -> l.contains("ERROR")).allMatch(l -> l.contains("OFLAG_COPIED"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=512", "cluster_size=512,refcount_bits=64"})
    void anySubsetOfUnflushedWritesLeavesAConsistentImage(String options) throws IOException {
        Path base = dir.resolve("base.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", options, base.toString(), "4M");
        Path work = dir.resolve("work.qcow2");
        Files.copy(base, work);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(TestGraphs.opts("driver", "qcow2", "node-name", "q0", "file", Map.of("driver", "oplog",
                    "log", logName, "file", Map.of("driver", "file", "filename", work.toString()))));
            BlockBackend d = g.addBackend("d", "q0", true);
            workload(d, (InternalSnapshots) g.node("q0"), d.size(), new Random(options.hashCode()));
        }
        Qemu.checkClean(work);
        List<OpLogDriver.Op> ops = List.copyOf(OpLogDriver.log(logName));
        List<Integer> points = new ArrayList<>();
        for (int n = 0; n < ops.size(); n++) {
            if (ops.get(n).kind() != OpLogDriver.FLUSH) {
                points.add(n);
            }
        }
        Random r = new Random(1);
        Path replay = dir.resolve("replay.qcow2");
        int trials = 0;
        List<String> corrupt = new ArrayList<>();
        int step = Math.max(1, points.size() / CRASH_POINTS);
        for (int p = 0; p < points.size(); p += step) {
            int n = points.get(p);
            int lastFlush = -1;
            for (int i = n - 1; i >= 0; i--) {
                if (ops.get(i).kind() == OpLogDriver.FLUSH) {
                    lastFlush = i;
                    break;
                }
            }
            List<OpLogDriver.Op> flushed = ops.subList(0, lastFlush + 1);
            List<List<OpLogDriver.Op>> variants = new ArrayList<>();
            List<OpLogDriver.Op> newest = new ArrayList<>(flushed);
            newest.add(ops.get(n));
            variants.add(newest);
            if (n - lastFlush > 2) {
                List<OpLogDriver.Op> some = new ArrayList<>(flushed);
                for (int i = lastFlush + 1; i <= n; i++) {
                    if (r.nextBoolean()) {
                        some.add(ops.get(i));
                    }
                }
                variants.add(some);
            }
            for (List<OpLogDriver.Op> v : variants) {
                OpLogDriver.replay(base, replay, v);
                trials++;
                Qemu.Result c = Qemu.exec("qemu-img", "check", replay.toString());
                if (c.exit() == 2 && onlyCopiedFlags(c)) {
                    // snapshot create/delete: the refcounts are durable, the COPIED flags not yet
                    // (QEMU has the same window); check -r leaks repairs that
                    Qemu.exec("qemu-img", "check", "-r", "leaks", replay.toString());
                    c = Qemu.exec("qemu-img", "check", replay.toString());
                }
                if (c.exit() != 0 && c.exit() != 3) {
                    String first = (c.err() + c.out()).lines().filter(l -> l.contains("ERROR")).findFirst()
                            .orElse("exit " + c.exit() + " " + c.err());
                    corrupt.add("power loss before op " + (n + 1) + " of " + ops.size() + " (last flush at op "
                            + lastFlush + ", " + (v.size() - flushed.size()) + " of " + (n - lastFlush)
                            + " unflushed writes kept): " + first);
                }
            }
        }
        assertTrue(trials > 100, "only " + trials + " replays");
        assertTrue(corrupt.isEmpty(), corrupt.size() + " of " + trials + " replays are corrupt, e.g.\n"
                + String.join("\n", corrupt.subList(0, Math.min(5, corrupt.size()))));
    }
}
