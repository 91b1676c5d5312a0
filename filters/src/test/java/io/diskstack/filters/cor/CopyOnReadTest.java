package io.diskstack.filters.cor;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.options.OptionTree;
import io.diskstack.core.testing.Background;
import io.diskstack.core.testing.RecordingDriver;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** copy-on-read over the test overlay: population, bottom, and races with writes. */
class CopyOnReadTest {
    private static final int CLUSTER = 65536;
    private static final int SIZE = 4 << 20;

    @TempDir
    Path dir;
    BlockGraph graph;

    @BeforeEach
    void open() {
        graph = TestGraphs.newGraph(dir);
    }

    @AfterEach
    void close() {
        graph.close();
    }

    /** A memory node filled with the pattern of {@code seed}. */
    private byte[] base(String name, long seed) throws Exception {
        graph.open(opts("driver", "memory", "node-name", name, "size", SIZE));
        byte[] data = TestGraphs.randomBytes(seed, SIZE);
        BlockBackend b = graph.addBackend("fill-" + name, name, true);
        b.write(0, ByteBuffer.wrap(data), 0);
        return data;
    }

    private TestOverlayDriver.Overlay overlay(String name, String backing, Object... extra) throws Exception {
        graph.open(opts("driver", "memory", "node-name", name + "-data", "size", SIZE));
        Map<String, Object> o = new java.util.LinkedHashMap<>(opts("driver", "test-overlay", "node-name", name,
                "file", name + "-data", "backing", backing, "cluster-size", CLUSTER));
        o.putAll(opts(extra));
        graph.open(o);
        return (TestOverlayDriver.Overlay) graph.node(name);
    }

    private BlockBackend cor(String top, Object... extra) throws Exception {
        Map<String, Object> o = new java.util.LinkedHashMap<>(opts("driver", "copy-on-read", "node-name", "cor",
                "file", top));
        o.putAll(opts(extra));
        graph.open(o);
        return graph.addBackend("disk0", "cor", true);
    }

    private static byte[] read(BlockBackend b, long offset, int length) throws Exception {
        ByteBuffer buf = ByteBuffer.allocate(length);
        b.read(offset, buf);
        return buf.array();
    }

    @Test
    void readsCopyWholeClustersIntoTheTopImage() throws Exception {
        byte[] base = base("base", 1);
        TestOverlayDriver.Overlay ov = overlay("ov", "base");
        BlockBackend disk = cor("ov");
        int off = CLUSTER + 1000;
        int len = 3 * CLUSTER;
        assertArrayEquals(Arrays.copyOfRange(base, off, off + len), read(disk, off, len));
        // [65536+1000, 262144+1000) touches clusters 1..4.
        assertEquals(4, ov.allocatedClusters());
        for (int c = 0; c < SIZE / CLUSTER; c++) {
            assertEquals(c >= 1 && c <= 4, ov.isAllocated((long) c * CLUSTER), "cluster " + c);
        }
        // The copy is the base's data: read it from the overlay's own file.
        BlockBackend data = graph.addBackend("data", "ov-data", false);
        assertArrayEquals(Arrays.copyOfRange(base, CLUSTER, 5 * CLUSTER), read(data, CLUSTER, 4 * CLUSTER));
        assertArrayEquals(base, read(disk, 0, SIZE));
        assertEquals(SIZE / CLUSTER, ov.allocatedClusters());
    }

    /** A cluster partly allocated in the top (qcow2 subclusters) gets its other parts copied. */
    @Test
    void partlyAllocatedClustersAreCompleted() throws Exception {
        byte[] base = base("base", 13);
        TestOverlayDriver.Overlay ov = overlay("ov", "base", "allocation-unit", 4096);
        byte[] own = TestGraphs.randomBytes(14, 4096);
        graph.addBackend("direct", "ov", true).write(2 * CLUSTER + 8192, ByteBuffer.wrap(own), 0);
        assertEquals(1, ov.allocatedClusters());
        BlockBackend disk = cor("ov");
        byte[] expected = Arrays.copyOfRange(base, 2 * CLUSTER, 3 * CLUSTER);
        System.arraycopy(own, 0, expected, 8192, 4096);
        assertArrayEquals(expected, read(disk, 2 * CLUSTER, CLUSTER));
        assertEquals(CLUSTER / 4096, ov.allocatedClusters(), "every unit of the cluster is in the top now");
        assertArrayEquals(expected, read(graph.addBackend("data", "ov-data", false), 2 * CLUSTER, CLUSTER));
    }

    @Test
    void withoutTheFilterNothingIsCopied() throws Exception {
        byte[] base = base("base", 2);
        TestOverlayDriver.Overlay ov = overlay("ov", "base");
        BlockBackend plain = graph.addBackend("plain", "ov", true);
        assertArrayEquals(base, read(plain, 0, SIZE));
        assertEquals(0, ov.allocatedClusters());
    }

    @Test
    void readOnlyTopIsNotPopulated() throws Exception {
        byte[] base = base("base", 3);
        TestOverlayDriver.Overlay ov = overlay("ov", "base", "read-only", true);
        graph.open(opts("driver", "copy-on-read", "node-name", "cor", "file", "ov", "read-only", true));
        BlockBackend disk = graph.addBackend("disk0", "cor", false);
        assertArrayEquals(Arrays.copyOf(base, 1 << 20), read(disk, 0, 1 << 20));
        assertEquals(0, ov.allocatedClusters());
    }

    @Test
    void bottomStopsTheCopy() throws Exception {
        // top -> mid -> base; mid holds clusters 0..7 of its own, base the rest.
        byte[] base = base("base", 4);
        TestOverlayDriver.Overlay mid = overlay("mid", "base");
        byte[] midData = TestGraphs.randomBytes(5, 8 * CLUSTER);
        graph.addBackend("fill-mid", "mid", true).write(0, ByteBuffer.wrap(midData), 0);
        TestOverlayDriver.Overlay top = overlay("top", "mid");
        BlockBackend disk = cor("top", "bottom", "mid");
        byte[] expected = base.clone();
        System.arraycopy(midData, 0, expected, 0, midData.length);
        assertArrayEquals(expected, read(disk, 0, SIZE));
        for (int c = 0; c < SIZE / CLUSTER; c++) {
            assertEquals(c < 8, top.isAllocated((long) c * CLUSTER), "cluster " + c);
        }
        assertEquals(8, mid.allocatedClusters(), "the bottom is never written");
        assertTrue(graph.node("cor").details().contains("bottom mid"));
    }

    @Test
    void bottomAtTheBaseCopiesEverything() throws Exception {
        byte[] base = base("base", 6);
        overlay("mid", "base");
        TestOverlayDriver.Overlay top = overlay("top", "mid");
        BlockBackend disk = cor("top", "bottom", "base");
        assertArrayEquals(base, read(disk, 0, SIZE));
        assertEquals(SIZE / CLUSTER, top.allocatedClusters());
    }

    @Test
    void badBottomNamesNodeAndKey() throws Exception {
        base("base", 7);
        overlay("top", "base");
        graph.open(opts("driver", "memory", "node-name", "other"));
        graph.open(opts("driver", "passthrough", "node-name", "pt", "file", "other"));
        assertEquals("blockdev 'c1' (copy-on-read): 'bottom' node 'other' is not in the backing chain of 'top'",
                assertThrows(ConfigException.class, () -> graph.open(opts("driver", "copy-on-read",
                        "node-name", "c1", "file", "top", "bottom", "other"))).getMessage());
        assertEquals("blockdev 'c2' (copy-on-read): 'bottom' node 'pt' is a filter",
                assertThrows(ConfigException.class, () -> graph.open(opts("driver", "copy-on-read",
                        "node-name", "c2", "file", "top", "bottom", "pt"))).getMessage());
        assertEquals("blockdev 'c3' (copy-on-read): 'bottom' refers to unknown node 'nope'",
                assertThrows(ConfigException.class, () -> graph.open(opts("driver", "copy-on-read",
                        "node-name", "c3", "file", "top", "bottom", "nope"))).getMessage());
        assertEquals("blockdev 'c4' (copy-on-read): 'bottom' node 'top' is not in the backing chain of 'top'",
                assertThrows(ConfigException.class, () -> graph.open(opts("driver", "copy-on-read",
                        "node-name", "c4", "file", "top", "bottom", "top"))).getMessage());
    }

    /** A write that arrives while copy-on-read copies the same cluster lands after the copy. */
    @Test
    void writeDuringACopyIsNotLost() throws Exception {
        base("base", 8);
        graph.open(opts("driver", "recorder", "node-name", "slow-base", "file", "base"));
        TestOverlayDriver.Overlay ov = overlay("ov", "slow-base");
        BlockBackend disk = cor("ov");
        byte[] newer = TestGraphs.randomBytes(9, CLUSTER);
        RecordingDriver.Hold copy = RecordingDriver.node(graph, "slow-base").hold("read");
        Background<byte[]> reader = Background.call("reader", () -> read(disk, 2 * CLUSTER, 100));
        Background<Void> writer;
        try {
            copy.awaitHeld();
            writer = Background.start("writer", () -> disk.write(2 * CLUSTER, ByteBuffer.wrap(newer), 0));
            writer.assertBlocked("the write must wait for the copy of its cluster");
        } finally {
            copy.release();
        }
        reader.join();
        writer.join();
        assertArrayEquals(newer, read(disk, 2 * CLUSTER, CLUSTER), "the newer write wins");
        assertTrue(ov.isAllocated(2 * CLUSTER));
    }

    /** A copy-on-read that arrives while a write to the cluster is in flight copies nothing over it. */
    @Test
    void copyDuringAWriteSeesTheWrite() throws Exception {
        byte[] base = base("base", 10);
        graph.open(opts("driver", "memory", "node-name", "ov-mem", "size", SIZE));
        graph.open(opts("driver", "recorder", "node-name", "ov-data", "file", "ov-mem"));
        graph.open(opts("driver", "test-overlay", "node-name", "ov", "file", "ov-data", "backing", "base",
                "cluster-size", CLUSTER));
        BlockBackend disk = cor("ov");
        byte[] newer = TestGraphs.randomBytes(11, CLUSTER);
        RecordingDriver.Hold write = RecordingDriver.node(graph, "ov-data").hold("write");
        Background<Void> writer = Background.start("writer", () -> disk.write(3 * CLUSTER, ByteBuffer.wrap(newer), 0));
        Background<byte[]> reader;
        try {
            write.awaitHeld();
            reader = Background.call("reader", () -> read(disk, 3 * CLUSTER, CLUSTER));
            reader.assertBlocked("the read must wait for the write in flight");
        } finally {
            write.release();
        }
        writer.join();
        assertArrayEquals(newer, reader.join(), "the read waited for the write in flight");
        assertArrayEquals(newer, read(disk, 3 * CLUSTER, CLUSTER));
        assertArrayEquals(Arrays.copyOfRange(base, 4 * CLUSTER, 5 * CLUSTER), read(disk, 4 * CLUSTER, CLUSTER));
    }

    /**
     * Readers and writers racing for fresh clusters: for each cluster, a copy-on-read and a
     * (whole or partial) write start together; the cluster must end with the write's data over
     * the base, never a stale copy of the base over the write. Four such pairs run at a time.
     */
    @Test
    void concurrentReadsAndWritesNeverLeaveAStaleCopy() throws Exception {
        byte[] base = base("base", 12);
        // Delays on the base's reads and before each write widen the races under test.
        graph.open(OptionTree.flatten(Map.of("driver", "blkdebug", "node-name", "jitter", "file", "base",
                "inject-delay", List.of(Map.of("iotype", "read", "ms", 2, "every", 2)))));
        TestOverlayDriver.Overlay ov = overlay("ov", "jitter");
        BlockBackend disk = cor("ov");
        int clusters = SIZE / CLUSTER;
        int pairs = 4;
        byte[][] model = new byte[clusters][];
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int p = 0; p < pairs; p++) {
            int id = p;
            threads.add(new Thread(() -> {
                Random rnd = new Random(id);
                try {
                    for (int c = id; c < clusters; c += pairs) {
                        long at = (long) c * CLUSTER;
                        byte[] next = Arrays.copyOfRange(base, c * CLUSTER, (c + 1) * CLUSTER);
                        int from = rnd.nextBoolean() ? 0 : rnd.nextInt(CLUSTER - 1);
                        int len = from == 0 ? CLUSTER : 1 + rnd.nextInt(CLUSTER - from);
                        byte[] patch = TestGraphs.randomBytes(c, len);
                        System.arraycopy(patch, 0, next, from, len);
                        model[c] = next;
                        java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
                        int readFrom = rnd.nextInt(CLUSTER / 2);
                        int readLen = 1 + rnd.nextInt(CLUSTER / 2);
                        long delayNanos = rnd.nextInt(3_000_000);
                        Thread reader = new Thread(() -> {
                            try {
                                go.await();
                                read(disk, at + readFrom, readLen);
                            } catch (Throwable e) {
                                errors.add(e);
                            }
                        });
                        reader.start();
                        go.countDown();
                        java.util.concurrent.locks.LockSupport.parkNanos(delayNanos);
                        disk.write(at + from, ByteBuffer.wrap(patch), 0);
                        reader.join();
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            }));
        }
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            t.join();
        }
        assertTrue(errors.isEmpty(), errors.toString());
        for (int c = 0; c < clusters; c++) {
            assertArrayEquals(model[c], read(disk, (long) c * CLUSTER, CLUSTER), "cluster " + c);
        }
        assertEquals(clusters, ov.allocatedClusters());
    }
}
