package io.diskstack.filters.quorum;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.options.OptionTree;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.formats.file.FileDriver;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Quorum over raw image files: corruption, rewrite, failing children, blkverify, fifo, bad options. */
class QuorumTest {
    private static final int SIZE = 4 << 20;
    private static final Logger QUORUM_LOG = Logger.getLogger(QuorumNode.class.getName());

    @TempDir
    Path dir;
    BlockGraph graph;
    final List<LogRecord> logged = new CopyOnWriteArrayList<>();
    final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord r) {
            logged.add(r);
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    @BeforeEach
    void open() {
        graph = TestGraphs.newGraph(dir);
        QUORUM_LOG.addHandler(capture);
    }

    @AfterEach
    void close() {
        QUORUM_LOG.removeHandler(capture);
        graph.close();
    }

    /** Raw images c0…c(n-1) on file nodes; children listed in {@code failing} sit under a blkdebug that fails everything. */
    private List<String> children(int n, int... failing) throws Exception {
        Map<Integer, List<Map<String, Object>>> rules = new LinkedHashMap<>();
        for (int f : failing) {
            rules.put(f, List.of(Map.of("errno", "EIO")));
        }
        return childrenWithErrors(n, rules);
    }

    /** Raw images c0…c(n-1) on file nodes; child i sits under a blkdebug with {@code rules.get(i)} as inject-error. */
    private List<String> childrenWithErrors(int n, Map<Integer, List<Map<String, Object>>> rules) throws Exception {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Path img = dir.resolve("c" + i + ".img");
            Files.deleteIfExists(img);
            FileDriver.createSparseFile(img, SIZE);
            graph.open(opts("driver", "file", "node-name", "f" + i, "filename", img.getFileName().toString()));
            String below = "f" + i;
            if (rules.containsKey(i)) {
                graph.open(OptionTree.flatten(Map.of("driver", "blkdebug", "node-name", "bad" + i, "file", below,
                        "inject-error", rules.get(i))));
                below = "bad" + i;
            }
            graph.open(opts("driver", "raw", "node-name", "r" + i, "file", below));
            names.add("r" + i);
        }
        return names;
    }

    private BlockBackend quorum(List<String> children, long threshold, Object... extra) throws Exception {
        Map<String, Object> o = new LinkedHashMap<>(opts("driver", "quorum", "node-name", "q0",
                "children", children, "vote-threshold", threshold));
        o.putAll(opts(extra));
        graph.open(o);
        return graph.addBackend("disk0", "q0", true);
    }

    private static byte[] read(BlockBackend b, long offset, int length) throws Exception {
        ByteBuffer buf = ByteBuffer.allocateDirect(length);
        b.read(offset, buf);
        return TestGraphs.toArray(buf);
    }

    private void corrupt(int child, long offset, byte[] junk) throws Exception {
        try (FileChannel ch = FileChannel.open(dir.resolve("c" + child + ".img"), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(junk), offset);
        }
    }

    private byte[] file(int child) throws Exception {
        return Files.readAllBytes(dir.resolve("c" + child + ".img"));
    }

    @SuppressWarnings("unchecked")
    private Map<String, Long> stats() {
        return (Map<String, Long>) graph.node("q0").stats();
    }

    private boolean loggedAbout(String... parts) {
        return logged.stream().anyMatch(r -> Arrays.stream(parts).allMatch(p -> r.getMessage().contains(p)));
    }

    @Test
    void aCorruptedChildIsOutvoted() throws Exception {
        BlockBackend q = quorum(children(3), 2);
        byte[] data = TestGraphs.randomBytes(1, 1 << 20);
        q.write(0, ByteBuffer.wrap(data), 0);
        q.flush();
        corrupt(1, 65536, TestGraphs.randomBytes(2, 4096));
        assertArrayEquals(data, read(q, 0, 1 << 20));
        assertEquals(1L, stats().get("children.1.mismatches"));
        assertEquals(0L, stats().get("children.0.mismatches"));
        assertEquals(0L, stats().get("children.2.mismatches"));
        assertTrue(loggedAbout("children.1 ('r1')", "offset 0 (+1048576)", "first at offset 65536"), logged.toString());
        assertFalse(Arrays.equals(file(0), file(1)), "without rewrite-corrupted the bad copy stays");
    }

    @Test
    void rewriteCorruptedRepairsTheChild() throws Exception {
        BlockBackend q = quorum(children(3), 2, "rewrite-corrupted", true);
        byte[] data = TestGraphs.randomBytes(3, 2 << 20);
        q.write(0, ByteBuffer.wrap(data), 0);
        q.flush();
        corrupt(2, 100_000, TestGraphs.randomBytes(4, 3000));
        corrupt(2, 1_500_000, TestGraphs.randomBytes(5, 10));
        assertFalse(Arrays.equals(file(0), file(2)));
        assertArrayEquals(data, read(q, 0, 2 << 20));
        q.flush();
        assertArrayEquals(file(0), file(2), "the corrupted child was rewritten");
        assertArrayEquals(file(0), file(1));
        assertEquals(1L, stats().get("children.2.mismatches"));
        assertTrue(loggedAbout("rewrote children.2 ('r2')"), logged.toString());
        logged.clear();
        assertArrayEquals(data, read(q, 0, 2 << 20));
        assertEquals(1L, stats().get("children.2.mismatches"), "nothing to repair the second time");
    }

    @Test
    void rewriteCorruptedLeavesATieAlone() throws Exception {
        BlockBackend q = quorum(children(2), 1, "rewrite-corrupted", true);
        byte[] data = TestGraphs.randomBytes(40, 65536);
        q.write(0, ByteBuffer.wrap(data), 0);
        q.flush();
        byte[] good = file(1);
        corrupt(0, 1000, TestGraphs.randomBytes(41, 100));
        read(q, 0, 65536);
        q.flush();
        assertArrayEquals(good, file(1), "one vote against one: no version may overwrite the other");
        assertFalse(loggedAbout("rewrote"), logged.toString());
    }

    @Test
    void rewriteCorruptedNeedsAStrictMajority() throws Exception {
        // Four children, threshold 2: two agree, the other two each differ. The two win the read
        // (a plurality meeting the threshold) but are not a majority of the votes, so nothing is rewritten.
        BlockBackend q = quorum(children(4), 2, "rewrite-corrupted", true);
        byte[] data = TestGraphs.randomBytes(42, 65536);
        q.write(0, ByteBuffer.wrap(data), 0);
        q.flush();
        corrupt(2, 10, new byte[] {1});
        corrupt(3, 10, new byte[] {2});
        byte[] two = file(2);
        byte[] three = file(3);
        assertArrayEquals(data, read(q, 0, 65536));
        assertArrayEquals(two, file(2));
        assertArrayEquals(three, file(3));
        corrupt(3, 10, new byte[] {1});
        assertArrayEquals(data, read(q, 0, 65536), "two against two: the first version wins the read");
        assertArrayEquals(two, file(2));
        assertArrayEquals(two, file(3));
        assertFalse(loggedAbout("rewrote"), logged.toString());
    }

    @Test
    void oneFailingChildIsToleratedTwoAreNot() throws Exception {
        BlockBackend q = quorum(children(3, 1), 2);
        byte[] data = TestGraphs.randomBytes(6, 300_000);
        q.write(1000, ByteBuffer.wrap(data), 0);
        q.flush();
        assertArrayEquals(data, read(q, 1000, data.length));
        q.writeZeroes(0, 4096, 0);
        assertTrue(stats().get("children.1.errors") >= 4, stats().toString());
        assertEquals(0L, stats().get("children.0.errors"));
        assertTrue(loggedAbout("children.1 ('r1') failed write at offset 1000 (+300000)"), logged.toString());
        graph.close();

        graph = TestGraphs.newGraph(dir);
        BlockBackend q2 = quorum(children(3, 0, 2), 2);
        BlockIOException w = assertThrows(BlockIOException.class, () -> q2.write(0, ByteBuffer.allocate(512), 0));
        assertEquals(Errno.EIO, w.errno());
        assertTrue(w.getMessage().startsWith("quorum 'q0': write at offset 0 (+512) succeeded on 1 of 3 children, "
                + "vote-threshold is 2"), w.getMessage());
        assertEquals(Errno.EIO, assertThrows(BlockIOException.class, () -> read(q2, 0, 512)).errno());
        assertThrows(BlockIOException.class, q2::flush);
    }

    @Test
    void flushNeedsThresholdChildrenThatFlushedAndLostNoWrite() throws Exception {
        // children.1 loses one write; children.2 fails one flush: only children.0 has it all on disk.
        BlockBackend q = quorum(childrenWithErrors(3, Map.of(
                1, List.of(Map.of("iotype", "write", "offset", 1L << 20, "length", 4096L, "once", true)),
                2, List.of(Map.of("iotype", "flush", "once", true)))), 2);
        q.write(1 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(20, 4096)), 0);
        BlockIOException e = assertThrows(BlockIOException.class, q::flush);
        assertEquals(Errno.EIO, e.errno());
        assertTrue(e.getMessage().startsWith("quorum 'q0': flush: 1 of 3 children flushed every write since "
                + "their last flush, vote-threshold is 2; children.1 ('r1') lost a write"), e.getMessage());
        // children.1 still lacks the write; children.2 failed its last flush: only children.0 counts.
        assertEquals(Errno.EIO, assertThrows(BlockIOException.class, q::flush).errno());
        // children.2 has flushed since its failure: with children.0, the write is durable on two.
        q.flush();
        // ... and children.1 counts again for what came after.
        q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(21, 4096)), 0);
        q.flush();
    }

    @Test
    void aChildThatLostAnAcknowledgedWriteDoesNotMakeItDurable() throws Exception {
        // The write is acknowledged by children.0 and children.2; children.1 never gets it.
        // children.0 never completes a flush, children.2 fails its first one: no flush here ever
        // makes the write durable on two children, so none may succeed.
        BlockBackend q = quorum(childrenWithErrors(3, Map.of(
                0, List.of(Map.of("iotype", "flush")),
                1, List.of(Map.of("iotype", "write", "offset", 1L << 20, "length", 4096L, "once", true)),
                2, List.of(Map.of("iotype", "flush", "once", true)))), 2);
        q.write(1 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(24, 4096)), 0);
        for (int i = 0; i < 4; i++) {
            assertEquals(Errno.EIO, assertThrows(BlockIOException.class, q::flush, "flush " + (i + 1)).errno());
        }
    }

    @Test
    void aLostWriteCountsAgainstTheNextFlushOnly() throws Exception {
        BlockBackend q = quorum(childrenWithErrors(3, Map.of(
                0, List.of(Map.of("iotype", "write", "offset", 0L, "length", 4096L, "once", true)))), 3);
        BlockIOException w = assertThrows(BlockIOException.class,
                () -> q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(22, 4096)), 0));
        assertEquals(Errno.EIO, w.errno(), "threshold 3: the write itself fails");
        assertEquals(Errno.EIO, assertThrows(BlockIOException.class, q::flush).errno(),
                "children.0 did not get a write since the last flush");
        q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(23, 4096)), 0);
        q.flush();
    }

    /** Children whose writes take turns being slow, so that unordered writes would land in different orders. */
    private List<String> jitteredChildren(int n) throws Exception {
        Map<Integer, List<Map<String, Object>>> none = Map.of();
        List<String> names = childrenWithErrors(n, none);
        List<String> jittered = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            graph.open(OptionTree.flatten(Map.of("driver", "blkdebug", "node-name", "slow" + i, "file", names.get(i),
                    "inject-delay", List.of(Map.of("iotype", "write", "every", (long) (2 + i), "ms", 1L)))));
            jittered.add("slow" + i);
        }
        return jittered;
    }

    /** Runs {@code threads} workers at once, {@code rounds} times, all starting each round together. */
    private static void concurrently(int threads, int rounds, Worker work) throws Exception {
        java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CyclicBarrier round = new java.util.concurrent.CyclicBarrier(threads);
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        List<Thread> all = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            Thread th = new Thread(() -> {
                try {
                    start.await();
                    for (int r = 0; r < rounds; r++) {
                        round.await(30, java.util.concurrent.TimeUnit.SECONDS);
                        work.run(id, r);
                    }
                } catch (Throwable e) {
                    errors.add(e);
                    round.reset();
                }
            });
            all.add(th);
            th.start();
        }
        start.countDown();
        for (Thread th : all) {
            th.join();
        }
        if (!errors.isEmpty()) {
            throw new AssertionError(errors.size() + " workers failed; first: " + errors.get(0), errors.get(0));
        }
    }

    interface Worker {
        void run(int thread, int round) throws Exception;
    }

    private static byte[] pattern(int thread, int round, int length) {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) (thread * 16 + round % 16 + 1));
        return b;
    }

    @Test
    void overlappingConcurrentWritesLeaveTheChildrenIdentical() throws Exception {
        BlockBackend q = quorum(jitteredChildren(3), 2);
        // Round r: eight writes at once over one 64 KiB region, overlapping by halves.
        concurrently(8, 32, (t, r) -> q.write(65536L * r + 8192 * (t % 2), ByteBuffer.wrap(pattern(t, r, 16384)), 0));
        q.flush();
        byte[] first = file(0);
        for (int i = 1; i < 3; i++) {
            assertTrue(Arrays.equals(first, file(i)), "children.0 and children." + i + " differ");
        }
        assertEquals(0L, stats().get("children.1.mismatches") + stats().get("children.2.mismatches"));
    }

    @Test
    void readsRacingOverlappingWritesSeeOneVersion() throws Exception {
        BlockBackend q = quorum(jitteredChildren(3), 3);
        q.write(0, ByteBuffer.wrap(pattern(0, 0, 16384)), 0);
        concurrently(8, 25, (t, r) -> {
            if (t % 2 == 0) {
                q.write(0, ByteBuffer.wrap(pattern(t, r, 16384)), 0);
            } else {
                byte[] got = read(q, 2048, 8192);
                for (byte b : got) {
                    if (b != got[0]) {
                        throw new AssertionError("a read saw two writes at once");
                    }
                }
            }
        });
        Map<String, Long> st = stats();
        assertEquals(0L, st.get("vote-failures"), st.toString());
        assertEquals(0L, st.get("children.0.mismatches") + st.get("children.1.mismatches")
                + st.get("children.2.mismatches"), st.toString());
    }

    @Test
    void rewritesOfCorruptedDataNeverLandOverNewerWrites() throws Exception {
        BlockBackend q = quorum(jitteredChildren(3), 2, "rewrite-corrupted", true);
        for (int r = 0; r < 16; r++) {
            q.write(65536L * r, ByteBuffer.wrap(pattern(0, r, 16384)), 0);
        }
        q.flush();
        for (int r = 0; r < 16; r++) {
            corrupt(2, 65536L * r, new byte[16384]);
        }
        // Round r: readers find children.2 corrupt and repair it while writers overwrite the region.
        concurrently(6, 16, (t, r) -> {
            if (t % 2 == 0) {
                q.write(65536L * r, ByteBuffer.wrap(pattern(t + 1, r, 16384)), 0);
            } else {
                read(q, 65536L * r, 16384);
            }
        });
        q.flush();
        assertTrue(Arrays.equals(file(0), file(1)), "children.0 and children.1 differ");
        assertTrue(Arrays.equals(file(0), file(2)), "children.2 holds a stale rewrite");
    }

    @Test
    void thresholdOfAllChildrenFailsOnAnyDisagreementOrError() throws Exception {
        BlockBackend q = quorum(children(3), 3);
        q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(7, 8192)), 0);
        corrupt(0, 10, new byte[] {1, 2, 3});
        BlockIOException e = assertThrows(BlockIOException.class, () -> read(q, 0, 8192));
        assertEquals("quorum 'q0': no version of [0, +8192) has 3 votes (the most is 2)", e.getMessage());
        assertEquals(1L, stats().get("vote-failures"));
    }

    @Test
    void noMajorityIsAnError() throws Exception {
        BlockBackend q = quorum(children(3), 2);
        q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(8, 4096)), 0);
        corrupt(1, 0, new byte[] {1});
        corrupt(2, 0, new byte[] {2});
        assertEquals(Errno.EIO, assertThrows(BlockIOException.class, () -> read(q, 0, 4096)).errno());
        assertArrayEquals(Arrays.copyOfRange(file(0), 1, 4096), read(q, 1, 4095), "other bytes still agree");
    }

    @Test
    void blkverifyFailsAMismatchAndSaysWhere() throws Exception {
        BlockBackend q = quorum(children(2), 2, "blkverify", true);
        byte[] data = TestGraphs.randomBytes(9, 65536);
        q.write(0, ByteBuffer.wrap(data), 0);
        assertArrayEquals(data, read(q, 0, 65536));
        corrupt(1, 5000, new byte[] {(byte) ~data[5000]});
        BlockIOException e = assertThrows(BlockIOException.class, () -> read(q, 4096, 8192));
        assertEquals(Errno.EIO, e.errno());
        assertEquals("quorum 'q0': blkverify mismatch at offset 5000 in read of [4096, +8192): children.0 ('r0') "
                + "and children.1 ('r1') differ", e.getMessage());
        assertArrayEquals(Arrays.copyOfRange(data, 8192, 65536), read(q, 8192, 65536 - 8192));
    }

    @Test
    void fifoReadsTheFirstChildThatAnswers() throws Exception {
        BlockBackend q = quorum(childrenWithErrors(3, Map.of(0, List.of(Map.of("iotype", "read")))), 1,
                "read-pattern", "fifo");
        byte[] data = TestGraphs.randomBytes(10, 10_000);
        q.write(0, ByteBuffer.wrap(data), 0);
        corrupt(2, 0, new byte[100]);
        assertArrayEquals(data, read(q, 0, data.length), "children.1 answers; children.2 is never asked");
        assertEquals(1L, stats().get("children.0.errors"));
        assertEquals(0L, stats().get("children.2.mismatches"));
        assertTrue(graph.node("q0").details().contains("read-pattern fifo"));
    }

    @Test
    void fifoNeverReadsAChildThatLostAWrite() throws Exception {
        BlockBackend q = quorum(childrenWithErrors(3, Map.of(
                0, List.of(Map.of("iotype", "write", "offset", 8192L, "length", 4096L, "every", 2L,
                        "once", true)))), 2, "read-pattern", "fifo");
        byte[] old = TestGraphs.randomBytes(30, 4096);
        byte[] fresh = TestGraphs.randomBytes(31, 4096);
        q.write(0, ByteBuffer.wrap(old), 0);
        q.write(8192, ByteBuffer.wrap(old), 0);
        q.write(8192, ByteBuffer.wrap(fresh), 0);
        assertArrayEquals(fresh, read(q, 8192, 4096), "children.0 lost the last write: children.1 answers");
        assertArrayEquals(old, read(q, 0, 4096));
        assertEquals(1L, stats().get("children.0.lost-writes"));
        assertEquals(0L, stats().get("children.1.lost-writes"));
    }

    @Test
    void fifoStillReadsAChildWhoseFailedWriteFailedAsAWhole() throws Exception {
        BlockBackend q = quorum(childrenWithErrors(2, Map.of(
                0, List.of(Map.of("iotype", "write", "offset", 0L, "length", 512L, "once", true)),
                1, List.of(Map.of("iotype", "read")))), 2, "read-pattern", "fifo");
        assertEquals(Errno.EIO, assertThrows(BlockIOException.class,
                () -> q.write(0, ByteBuffer.allocate(512), 0)).errno());
        byte[] data = TestGraphs.randomBytes(32, 512);
        q.write(0, ByteBuffer.wrap(data), 0);
        assertArrayEquals(data, read(q, 0, 512), "children.0 is still read: the caller knows the failed write left "
                + "the range undefined (and children.1 fails reads)");
        assertEquals(1L, stats().get("children.0.lost-writes"));
    }

    @Test
    void fifoFailsWhenEveryChildLostAWrite() throws Exception {
        BlockBackend q = quorum(childrenWithErrors(2, Map.of(
                0, List.of(Map.of("iotype", "write", "offset", 0L, "length", 512L, "once", true)),
                1, List.of(Map.of("iotype", "write", "offset", 4096L, "length", 512L, "once", true)))), 1,
                "read-pattern", "fifo");
        q.write(0, ByteBuffer.allocate(512), 0);
        q.write(4096, ByteBuffer.allocate(512), 0);
        BlockIOException e = assertThrows(BlockIOException.class, () -> read(q, 0, 512));
        assertEquals(Errno.EIO, e.errno());
        assertEquals("quorum 'q0': read at offset 0 (+512): every child lost a write since it was opened "
                + "(read-pattern fifo reads only children that have every write)", e.getMessage());
    }

    @Test
    void aFloodOfMismatchesAndErrorsLogsAFewLines() throws Exception {
        BlockBackend q = quorum(children(4, 3), 2);
        q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(50, 4096)), 0);
        corrupt(1, 100, new byte[] {1, 2, 3});
        for (int i = 0; i < 200; i++) {
            read(q, 0, 4096);
        }
        assertEquals(200L, stats().get("children.1.mismatches"));
        assertTrue(stats().get("children.3.errors") >= 200);
        long mismatchLines = logged.stream().filter(r -> r.getMessage().contains("children.1 ('r1') differs")).count();
        long errorLines = logged.stream().filter(r -> r.getMessage().contains("children.3 ('r3') failed")).count();
        assertTrue(mismatchLines >= 1 && mismatchLines <= 5, mismatchLines + " mismatch lines");
        assertTrue(errorLines >= 1 && errorLines <= 5, errorLines + " error lines");
    }

    /** A child that differs is logged once per open, however often and wherever it is read; its ranges are counted once. */
    @Test
    void aDivergentChildIsLoggedOncePerOpenAndItsRangesAreCountedOnce() throws Exception {
        BlockBackend q = quorum(children(3), 2);
        q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(51, 1 << 20)), 0);
        corrupt(1, 100, new byte[] {1, 2, 3});
        corrupt(1, 300_000, new byte[] {4, 5});
        for (int i = 0; i < 35; i++) {
            read(q, 0, 4096);
            read(q, 299_008, 8192);
        }
        assertEquals(70L, stats().get("children.1.mismatches"));
        assertEquals(2L, stats().get("children.1.divergent-ranges"));
        assertEquals(0L, stats().get("children.0.divergent-ranges"));
        List<String> lines = logged.stream().map(LogRecord::getMessage).filter(m -> m.contains("differs")).toList();
        assertEquals(1, lines.size(), lines.toString());
        assertTrue(lines.get(0).contains("children.1 ('r1') differs from the majority in read at offset 0 (+4096)")
                && lines.get(0).contains("(stats: children.1.mismatches, children.1.divergent-ranges)")
                && lines.get(0).contains("rewrite-corrupted or a resync of the child repairs it"), lines.get(0));

        // a remount finds it again: one line again, not one per offset or per read
        QUORUM_LOG.removeHandler(capture);
        graph.close();
        logged.clear();
        graph = TestGraphs.newGraph(dir);
        QUORUM_LOG.addHandler(capture);
        List<String> again = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            graph.open(opts("driver", "file", "node-name", "f" + i, "filename", "c" + i + ".img"));
            graph.open(opts("driver", "raw", "node-name", "r" + i, "file", "f" + i));
            again.add("r" + i);
        }
        q = quorum(again, 2);
        for (int i = 0; i < 35; i++) {
            read(q, 299_008, 8192);
            read(q, 0, 4096);
        }
        assertEquals(1L, logged.stream().filter(r -> r.getMessage().contains("differs")).count());
        assertEquals(2L, stats().get("children.1.divergent-ranges"));
    }

    @Test
    void blockStatusToleratesAsManyFailingChildrenAsReadsDo() throws Exception {
        BlockBackend q = quorum(childrenWithErrors(3, Map.of(
                2, List.of(Map.of("iotype", "block-status")))), 2);
        q.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(60, 65536)), 0);
        io.diskstack.core.BlockStatus st = q.blockStatus(0, 65536);
        assertTrue(st.isData(), st.toString());
        assertTrue(stats().get("children.2.errors") >= 1);
        graph.close();

        graph = TestGraphs.newGraph(dir);
        BlockBackend q2 = quorum(childrenWithErrors(3, Map.of(
                1, List.of(Map.of("iotype", "block-status")), 2, List.of(Map.of("iotype", "block-status")))), 2);
        BlockIOException e = assertThrows(BlockIOException.class, () -> q2.blockStatus(0, 65536));
        assertEquals(Errno.EIO, e.errno());
        assertTrue(e.getMessage().startsWith("quorum 'q0': block-status at offset 0 (+65536) succeeded on 1 of 3 "
                + "children, vote-threshold is 2"), e.getMessage());
    }

    @Test
    void childrenCanBeFiltersAndQuorums() throws Exception {
        List<String> names = children(4);
        graph.objects().create(opts("qom-type", "throttle-group", "id", "tg0"), dir);
        graph.open(opts("driver", "throttle", "node-name", "t0", "throttle-group", "tg0", "file", "r0"));
        graph.open(opts("driver", "quorum", "node-name", "inner", "children", List.of("r1", "r2"),
                "vote-threshold", 1L));
        BlockBackend q = quorum(List.of("t0", "inner", names.get(3)), 2);
        byte[] data = TestGraphs.randomBytes(11, 100_000);
        q.write(12345, ByteBuffer.wrap(data), 0);
        corrupt(0, 12345, new byte[50]);
        assertArrayEquals(data, read(q, 12345, data.length));
        assertEquals(1L, stats().get("children.0.mismatches"));
    }

    @Test
    void badOptionsNameNodeAndKey() throws Exception {
        List<String> c = children(3);
        assertEquals("blockdev 'q0' (quorum): 'vote-threshold' value 4 is more than the number of children (3)",
                assertThrows(ConfigException.class, () -> quorum(c, 4)).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'vote-threshold' value 0 must be at least 1",
                assertThrows(ConfigException.class, () -> quorum(c, 0)).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'vote-threshold' is required", assertThrows(ConfigException.class,
                () -> graph.open(opts("driver", "quorum", "node-name", "q0", "children", c))).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'blkverify' needs exactly two children and vote-threshold 2",
                assertThrows(ConfigException.class, () -> quorum(c, 2, "blkverify", true)).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'rewrite-corrupted' cannot be used with blkverify",
                assertThrows(ConfigException.class, () -> quorum(c.subList(0, 2), 2, "blkverify", true,
                        "rewrite-corrupted", true)).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'blkverify' cannot be used with read-pattern fifo (fifo reads one "
                + "child: nothing to compare)", assertThrows(ConfigException.class, () -> quorum(c.subList(0, 2), 2,
                        "blkverify", true, "read-pattern", "fifo")).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'rewrite-corrupted' cannot be used with read-pattern fifo (fifo reads "
                + "one child: no vote finds the corrupted ones)", assertThrows(ConfigException.class,
                        () -> quorum(c, 2, "rewrite-corrupted", true, "read-pattern", "fifo")).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'read-pattern' value 'random' is not one of quorum, fifo",
                assertThrows(ConfigException.class, () -> quorum(c, 2, "read-pattern", "random")).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'children' is required: give at least one child (children.0, "
                + "children.1, …)", assertThrows(ConfigException.class,
                        () -> graph.open(opts("driver", "quorum", "node-name", "q0", "vote-threshold", 1L)))
                        .getMessage());
        graph.open(opts("driver", "memory", "node-name", "small", "size", "1M"));
        assertEquals("blockdev 'q0' (quorum): 'children.1' is 1048576 bytes but 'children.0' is 4194304: quorum "
                + "children must have the same size", assertThrows(ConfigException.class,
                        () -> quorum(List.of("r0", "small"), 1)).getMessage());
        assertEquals("blockdev 'q0' (quorum): 'children.2' refers to unknown node 'nope'",
                assertThrows(ConfigException.class, () -> quorum(List.of("r0", "r1", "nope"), 1)).getMessage());
    }
}
