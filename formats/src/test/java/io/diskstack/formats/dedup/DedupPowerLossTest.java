package io.diskstack.formats.dedup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ImageCheckContext;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Power loss at any moment: each child keeps what it had at its last completed flush plus any
 * subset of the writes it got since (a write may also be torn, only its first half landing).
 * Records every write both children get during a workload with duplicates, overwrites, discards,
 * guest flushes, a reopen and, with small caches, many checkpoints; then rebuilds the children as
 * a power loss at many points could leave them. Each rebuilt device opens, checks without
 * corruption, and reads every block as of the last completed guest flush or as written since.
 */
class DedupPowerLossTest {
    /** 16 MiB: the writes go to 48 regions spread over it, so they touch many metadata pages. */
    private static final int BLOCKS = 4096;
    private static final int REGIONS = 48;
    private static final int BS = 4096;
    private static final int CRASH_POINTS = 55;

    @TempDir
    Path dir;
    private final String logName = "dedup-powerloss-" + System.nanoTime();

    /** A guest operation: which log ops it may have caused, and what it set. */
    private record GuestWrite(int startOp, int[] blocks, int[] ids) {}

    /** A completed guest flush: the log length when it returned, and the disk it made durable. */
    private record GuestFlush(int endOp, int[] model) {}

    @AfterEach
    void forget() {
        WriteLogDriver.forget(logName);
    }

    private static byte[] content(int id) {
        return id == 0 ? new byte[BS] : TestGraphs.randomBytes(id * 131L + 3, BS);
    }

    private BlockBackend open(BlockGraph g, Path files) throws IOException {
        g.open(TestGraphs.opts("driver", "dedup", "node-name", "dd0", "cache-size", "128K",
                "metadata", Map.of("driver", "writelog", "log", logName, "tag", "metadata",
                        "file", Map.of("driver", "file", "filename", files.resolve("meta.img").toString(),
                                "cache.no-flush", true)),
                "data", Map.of("driver", "writelog", "log", logName, "tag", "data",
                        "file", Map.of("driver", "file", "filename", files.resolve("data.img").toString(),
                                "cache.no-flush", true))));
        return g.addBackend("d0", "dd0", true);
    }

    @Test
    void anySubsetOfUnflushedWritesLeavesAConsistentDeviceWithItsFlushedData() throws IOException {
        Path base = Files.createDirectories(dir.resolve("base"));
        DedupTesting.create(base, (long) BLOCKS * BS, BS);
        Path work = Files.createDirectories(dir.resolve("work"));
        Files.copy(base.resolve("meta.img"), work.resolve("meta.img"));
        Files.copy(base.resolve("data.img"), work.resolve("data.img"));
        List<WriteLogDriver.Op> log = WriteLogDriver.log(logName);
        List<GuestWrite> writes = new ArrayList<>();
        List<GuestFlush> flushes = new ArrayList<>();
        int[] model = new int[BLOCKS];
        Random rnd = new Random(7);
        int nextId = 1;
        BlockGraph g = TestGraphs.newGraph(dir);
        BlockBackend disk = open(g, work);
        for (int op = 0; op < 160; op++) {
            int start = rnd.nextInt(REGIONS) * (BLOCKS / REGIONS) + rnd.nextInt(4);
            int n = 1 + rnd.nextInt(8);
            int kind = rnd.nextInt(10);
            int[] blocks = new int[n];
            int[] ids = new int[n];
            for (int i = 0; i < n; i++) {
                blocks[i] = start + i;
            }
            if (kind < 6) {
                ByteBuffer buf = ByteBuffer.allocate(n * BS);
                for (int i = 0; i < n; i++) {
                    ids[i] = nextId > 1 && rnd.nextBoolean() ? 1 + rnd.nextInt(nextId - 1) : nextId++;
                    buf.put(content(ids[i]));
                }
                writes.add(new GuestWrite(log.size(), blocks, ids));
                disk.write((long) start * BS, buf.flip(), 0);
            } else if (kind < 8) {
                writes.add(new GuestWrite(log.size(), blocks, ids));
                disk.discard((long) start * BS, (long) n * BS);
            } else if (kind < 9 || op == 80) {
                disk.flush();
                flushes.add(new GuestFlush(log.size(), model.clone()));
            }
            for (int i = 0; i < n && kind < 8; i++) {
                model[blocks[i]] = ids[i];
            }
            if (op == 80) {
                // a clean close and reopen: a checkpoint, and the journal starting over
                g.close();
                g = TestGraphs.newGraph(dir);
                disk = open(g, work);
            }
        }
        g.close();
        flushes.add(new GuestFlush(log.size(), model.clone()));
        List<WriteLogDriver.Op> ops = List.copyOf(log);
        assertTrue(ops.stream().filter(o -> o.tag().equals("metadata") && o.kind() == WriteLogDriver.WRITE
                && o.offset() < 2 * 4096).count() > 4, "the workload made checkpoints (superblock writes)");

        WriteLogDriver.Base baseMeta = WriteLogDriver.Base.of(base.resolve("meta.img"));
        WriteLogDriver.Base baseData = WriteLogDriver.Base.of(base.resolve("data.img"));
        Set<Integer> touched = new java.util.TreeSet<>();
        for (GuestWrite w : writes) {
            for (int b : w.blocks()) {
                touched.add(b);
            }
        }
        Random r = new Random(11);
        List<String> failures = new ArrayList<>();
        int trials = 0;
        int step = Math.max(1, ops.size() / CRASH_POINTS);
        for (int n = 0; n < ops.size(); n += step) {
            for (int variant = 0; variant < 3; variant++) {
                List<WriteLogDriver.Op> meta = survivors(ops, n, "metadata", variant, r);
                List<WriteLogDriver.Op> data = survivors(ops, n, "data", variant, r);
                Path replay = Files.createDirectories(dir.resolve("replay"));
                WriteLogDriver.replay(baseMeta, replay.resolve("meta.img"), meta);
                WriteLogDriver.replay(baseData, replay.resolve("data.img"), data);
                trials++;
                String problem = verify(replay, n, writes, flushes, touched);
                if (problem != null) {
                    failures.add("power loss at op " + n + " of " + ops.size() + " (variant " + variant + "): " + problem);
                }
            }
        }
        assertTrue(trials >= 3 * CRASH_POINTS / 2, "only " + trials + " replays");
        assertTrue(failures.isEmpty(), failures.size() + " of " + trials + " replays failed, e.g.\n"
                + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
    }

    /**
     * What of one child's writes survives a power loss just after op n: everything before its last
     * flush, then (variant 0) all later writes, (1) a random subset of them, (2) a random subset
     * with the newest write torn in half.
     */
    private static List<WriteLogDriver.Op> survivors(List<WriteLogDriver.Op> ops, int n, String tag, int variant,
                                                     Random r) {
        int lastFlush = -1;
        for (int i = 0; i <= n; i++) {
            if (ops.get(i).tag().equals(tag) && ops.get(i).kind() == WriteLogDriver.FLUSH) {
                lastFlush = i;
            }
        }
        List<WriteLogDriver.Op> out = new ArrayList<>();
        WriteLogDriver.Op newest = null;
        for (int i = 0; i <= n; i++) {
            WriteLogDriver.Op op = ops.get(i);
            if (!op.tag().equals(tag) || op.kind() == WriteLogDriver.FLUSH) {
                continue;
            }
            if (i < lastFlush || variant == 0 || r.nextBoolean()) {
                out.add(op);
            }
            if (i > lastFlush) {
                newest = op;
            }
        }
        if (variant == 2 && newest != null && newest.kind() == WriteLogDriver.WRITE && newest.length() >= 1024) {
            out.remove(newest);
            out.add(new WriteLogDriver.Op(tag, WriteLogDriver.WRITE, newest.offset(), newest.length() / 2 / 512 * 512,
                    newest.data()));
        }
        return out;
    }

    /** Why the rebuilt device is not acceptable, or null. */
    private String verify(Path files, int n, List<GuestWrite> writes, List<GuestFlush> flushes, Set<Integer> touched)
            throws IOException {
        GuestFlush durable = new GuestFlush(0, new int[BLOCKS]);
        for (GuestFlush f : flushes) {
            if (f.endOp() <= n) {
                durable = f;
            }
        }
        List<Set<Integer>> allowed = new ArrayList<>();
        for (int b = 0; b < BLOCKS; b++) {
            allowed.add(new HashSet<>(List.of(durable.model()[b])));
        }
        for (GuestWrite w : writes) {
            if (w.startOp() >= durable.endOp() - 1 && w.startOp() <= n) {
                for (int i = 0; i < w.blocks().length; i++) {
                    allowed.get(w.blocks()[i]).add(w.ids()[i]);
                }
            }
        }
        try (BlockGraph g = TestGraphs.newGraph(files)) {
            g.open(DedupTesting.options(files, "dd0", "read-only", true));
            ImageCheckContext.Report check = DedupCheck.run((DedupNode) g.node("dd0"), ImageCheckContext.Repair.NONE);
            if (check.corruptions() > 0) {
                return "check: " + check.problems();
            }
            BlockBackend d = g.addBackend("d0", "dd0", false);
            for (int b : touched) {
                ByteBuffer block = ByteBuffer.allocate(BS);
                d.read((long) b * BS, block);
                byte[] got = block.array();
                boolean ok = false;
                for (int id : allowed.get(b)) {
                    ok |= Arrays.equals(content(id), got);
                }
                if (!ok) {
                    return "block " + b + " reads neither its content at the last flush (id " + durable.model()[b]
                            + ") nor one written since " + allowed.get(b);
                }
            }
            assertEquals(0, check.checkErrors());
        } catch (RuntimeException e) {
            return "open: " + e.getMessage();
        }
        return null;
    }
}
