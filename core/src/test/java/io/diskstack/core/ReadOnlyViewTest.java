package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A view reopens the nodes above the points read-only over other content, from the shape alone:
 * plain filters skipped, a fan-out node (pair) reopened over both stand-ins, a child off the way
 * read through the live node.
 */
class ReadOnlyViewTest {
    private static final int BLOCK = 4096;

    @TempDir
    Path dir;
    private BlockGraph graph;
    private BlockBackend disk;

    @BeforeEach
    void setUp() {
        graph = new BlockGraph(DriverRegistry.load(), ObjectRegistry.load(), dir);
    }

    @AfterEach
    void tearDown() {
        graph.close();
    }

    private void openPairDisk() throws IOException {
        graph.open(opts("driver", "memory", "node-name", "meta", "size", 64L));
        graph.open(opts("driver", "memory", "node-name", "data", "size", 16L * BLOCK));
        graph.open(opts("driver", "pair", "node-name", "p0", "metadata", "meta", "data", "data"));
        graph.open(opts("driver", "passthrough", "node-name", "top", "file", "p0"));
        disk = graph.addBackend("d0", "top", true);
    }

    /** A source over a copy of what the node holds now: a snapshot of it. */
    static final class Copy implements ReadOnlyView.Source {
        final byte[] bytes;
        volatile boolean closed;

        Copy(BlockNode node) throws IOException {
            ByteBuffer b = ByteBuffer.allocate((int) node.size());
            RequestPath.read(node, 0, b, 0);
            bytes = b.array();
        }

        @Override
        public long size() {
            return bytes.length;
        }

        @Override
        public void read(long offset, ByteBuffer dst) {
            dst.put(bytes, (int) offset, dst.remaining());
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    private void write(long block, byte fill) throws IOException {
        byte[] b = new byte[BLOCK];
        Arrays.fill(b, fill);
        disk.write(block * BLOCK, TestGraphs.direct(b), 0);
    }

    private static byte[] read(long size, IoRead reader) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect((int) size);
        reader.read(0, b);
        return TestGraphs.toArray(b);
    }

    private interface IoRead {
        void read(long offset, ByteBuffer dst) throws IOException;
    }

    @Test
    void aFanOutNodeIsReopenedOverBothStandInsAndFiltersAreSkipped() throws Exception {
        openPairDisk();
        write(0, (byte) 0x11);
        byte[] before = read(disk.size(), disk::read);
        Map<BlockNode, ReadOnlyView.Source> points = new IdentityHashMap<>();
        Copy meta = new Copy(graph.node("meta"));
        Copy data = new Copy(graph.node("data"));
        points.put(graph.node("meta"), meta);
        points.put(graph.node("data"), data);
        write(0, (byte) 0x22);
        write(1, (byte) 0x33);
        try (ReadOnlyView view = ReadOnlyView.open(graph, graph.node("top"), points, "test view")) {
            assertEquals(new TreeSet<>(Set.of("meta", "data", "p0")), new TreeSet<>(view.nodeNames()),
                    "the plain filter above the pair is not reopened");
            assertEquals(disk.size(), view.size());
            assertArrayEquals(before, read(view.size(), view::read), "the disk as it was");
            assertTrue(!Arrays.equals(before, read(disk.size(), disk::read)), "the live disk moved on");
        }
        assertTrue(meta.closed && data.closed, "closing the view closes the sources");
    }

    @Test
    void aChildOffTheWayIsReadThroughTheLiveNodeAndHeldThere() throws Exception {
        openPairDisk();
        write(0, (byte) 0x44);
        Copy data = new Copy(graph.node("data"));
        write(0, (byte) 0x55);
        try (ReadOnlyView view = ReadOnlyView.open(graph, graph.node("top"), Map.of(graph.node("data"), data),
                "test view")) {
            byte[] first = read(BLOCK, view::read);
            assertEquals(0x44, first[0] & 0xff, "data from the stand-in");
            // the metadata child is live: a block marked written now reads through to the (old) data
            write(2, (byte) 0x66);
            ByteBuffer b = ByteBuffer.allocateDirect(BLOCK);
            view.read(2L * BLOCK, b);
            assertEquals(0, b.get(0), "the stand-in never had block 2's data");
            assertTrue(graph.node("meta").parents().stream().anyMatch(e -> e.user().equals("test view")),
                    "the live node is held while the view reads it");
        }
        assertTrue(graph.node("meta").parents().stream().noneMatch(e -> e.user().equals("test view")));
    }

    @Test
    void aFrozenNodeIsHeldAgainstWriters() throws Exception {
        graph.open(opts("driver", "memory", "node-name", "m0"));
        ReadOnlyView.Source held = ReadOnlyView.liveNode(graph, graph.node("m0"), true, "snapshot view 'd0/s1'");
        ConfigException e = assertThrows(ConfigException.class, () -> graph.addBackend("d0", "m0", true));
        assertEquals(Errno.EBUSY, e.errno());
        assertTrue(e.getMessage().contains("snapshot view 'd0/s1'"), e.getMessage());
        held.close();
        graph.addBackend("d0", "m0", true);
    }

    @Test
    void aPointNotBelowTheTopIsRefusedAndTheSourcesClosed() throws Exception {
        openPairDisk();
        graph.open(opts("driver", "memory", "node-name", "other"));
        Copy a = new Copy(graph.node("data"));
        Copy b = new Copy(graph.node("other"));
        Map<BlockNode, ReadOnlyView.Source> points = new IdentityHashMap<>();
        points.put(graph.node("data"), a);
        points.put(graph.node("other"), b);
        ConfigException e = assertThrows(ConfigException.class,
                () -> ReadOnlyView.open(graph, graph.node("top"), points, "test view"));
        assertEquals("test view: node 'other' is not below 'top'", e.getMessage());
        assertTrue(a.closed && b.closed);
        assertEquals(List.of(), graph.node("other").parents());
    }
}
