package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.snapshot.InternalSnapshots.Snapshot;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.snapshot.SnapshotTargets;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The walk to the snapshot nodes below an export, and the all-or-nothing commands over them. */
class SnapshotTargetsTest {
    @TempDir
    Path dir;

    private BlockGraph graph;

    /** A leaf with internal snapshots in memory; {@code fail-create} makes every create fail. */
    static final class SnapDriver implements BlockDriver {
        public String name() {
            return "snap-mem";
        }

        public DriverKind kind() {
            return DriverKind.FORMAT;
        }

        public BlockNode open(NodeOpenContext ctx) {
            boolean failCreate = ctx.options().optBool("fail-create", false);
            return new SnapNode(ctx, failCreate);
        }
    }

    static final class SnapNode extends BlockNode implements InternalSnapshots {
        private final boolean failCreate;
        private final byte[] data = new byte[4096];
        private final Map<String, byte[]> contents = new LinkedHashMap<>();
        private final List<Snapshot> list = new ArrayList<>();
        private int nextId = 1;

        SnapNode(NodeOpenContext ctx, boolean failCreate) {
            super(ctx);
            this.failCreate = failCreate;
        }

        @Override
        public long size() {
            return data.length;
        }

        @Override
        protected synchronized void read(long offset, ByteBuffer dst, int flags) {
            dst.put(data, (int) offset, dst.remaining());
        }

        @Override
        protected synchronized void write(long offset, ByteBuffer src, int flags) {
            src.get(data, (int) offset, src.remaining());
        }

        @Override
        public synchronized List<Snapshot> listSnapshots() {
            return List.copyOf(list);
        }

        @Override
        public synchronized Snapshot createSnapshot(String name) throws IOException {
            if (failCreate) {
                throw new BlockIOException(Errno.ENOSPC, nodeName() + ": no room");
            }
            Snapshot s = new Snapshot(Integer.toString(nextId++), name, data.length, 0, Instant.now(), 0, 0);
            list.add(s);
            contents.put(s.id(), data.clone());
            return s;
        }

        @Override
        public synchronized void deleteSnapshot(String idOrName) {
            Snapshot s = SnapshotTargets.find(list, idOrName);
            list.remove(s);
            contents.remove(s.id());
        }

        @Override
        public synchronized void revertToSnapshot(String idOrName) {
            byte[] c = contents.get(SnapshotTargets.find(list, idOrName).id());
            System.arraycopy(c, 0, data, 0, c.length);
        }

        @Override
        public SnapshotReader openSnapshot(String idOrName) {
            throw new UnsupportedOperationException();
        }

        synchronized byte firstByte() {
            return data[0];
        }
    }

    /** A filter over several data children, like quorum (writes go to all). */
    static final class FanDriver implements BlockDriver {
        public String name() {
            return "fan";
        }

        public DriverKind kind() {
            return DriverKind.FILTER;
        }

        public BlockNode open(NodeOpenContext ctx) throws IOException {
            List<BlockChild> children = ctx.openChildList("children", java.util.EnumSet.of(ChildRole.DATA));
            return new BlockNode(ctx) {
                @Override
                public long size() {
                    return children.get(0).size();
                }

                @Override
                public Passage passage() {
                    return Passage.FAN_OUT;
                }

                @Override
                protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
                    children.get(0).read(offset, dst);
                }

                @Override
                protected void write(long offset, ByteBuffer src, int flags) throws IOException {
                    for (BlockChild c : children) {
                        c.write(offset, src.duplicate());
                    }
                }
            };
        }
    }

    @BeforeEach
    void setUp() {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new SnapDriver());
        drivers.register(new FanDriver());
        graph = new BlockGraph(drivers, ObjectRegistry.load(), dir);
    }

    @AfterEach
    void tearDown() {
        graph.close();
    }

    private BlockBackend fanOver(String... children) throws IOException {
        Object[] o = new Object[4 + 2 * children.length];
        o[0] = "driver";
        o[1] = "fan";
        o[2] = "node-name";
        o[3] = "fan0";
        for (int i = 0; i < children.length; i++) {
            o[4 + 2 * i] = "children." + i;
            o[5 + 2 * i] = children[i];
        }
        graph.open(opts(o));
        graph.open(opts("driver", "passthrough", "node-name", "top", "file", "fan0"));
        return graph.addBackend("d0", "top", true);
    }

    private SnapNode snap(String name) {
        return (SnapNode) graph.node(name);
    }

    private static List<String> names(List<Snapshot> list) {
        return list.stream().map(Snapshot::name).toList();
    }

    private void writeFirstByte(BlockBackend b, int value) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(512);
        Arrays.fill(buf.array(), (byte) value);
        b.write(0, buf, 0);
    }

    @Test
    void filtersPassTheWalkDownAndAFanOutReachesEveryChild() throws Exception {
        graph.open(opts("driver", "snap-mem", "node-name", "s0"));
        graph.open(opts("driver", "passthrough", "node-name", "p0", "file", "s0"));
        graph.open(opts("driver", "snap-mem", "node-name", "s1"));
        graph.open(opts("driver", "snap-mem", "node-name", "s2"));
        BlockBackend b = fanOver("p0", "s1", "s2");
        List<String> found = new SnapshotTargets(graph, b).targets().stream()
                .map(t -> t.node().nodeName()).toList();
        assertEquals(List.of("s0", "s1", "s2"), found);
    }

    @Test
    void aChainWithoutSnapshotsNamesWhereTheWalkEnded() throws Exception {
        graph.open(opts("driver", "memory", "node-name", "m0"));
        graph.open(opts("driver", "passthrough", "node-name", "p0", "file", "m0"));
        BlockBackend b = graph.addBackend("d0", "p0", true);
        ConfigException e = assertThrows(ConfigException.class, () -> new SnapshotTargets(graph, b).create("s"));
        assertEquals("no node below 'p0' supports internal snapshots (the walk ends at 'm0' (memory))",
                e.getMessage());
    }

    @Test
    void everyFanOutChildNeedsASnapshotNode() throws Exception {
        graph.open(opts("driver", "snap-mem", "node-name", "s0"));
        graph.open(opts("driver", "memory", "node-name", "m1"));
        BlockBackend b = fanOver("s0", "m1");
        ConfigException e = assertThrows(ConfigException.class, () -> new SnapshotTargets(graph, b).create("x"));
        assertTrue(e.getMessage().contains("'m1' (memory), below child 'children.1' of 'fan0'"), e.getMessage());
        assertEquals(List.of(), snap("s0").listSnapshots(), "nothing taken");
    }

    @Test
    void aFailedCreateDeletesTheSnapshotsAlreadyTaken() throws Exception {
        graph.open(opts("driver", "snap-mem", "node-name", "s0"));
        graph.open(opts("driver", "snap-mem", "node-name", "s1"));
        graph.open(opts("driver", "snap-mem", "node-name", "s2", "fail-create", true));
        BlockBackend b = fanOver("s0", "s1", "s2");
        BlockIOException e = assertThrows(BlockIOException.class, () -> new SnapshotTargets(graph, b).create("x"));
        assertEquals(Errno.ENOSPC, e.errno());
        assertTrue(e.getMessage().contains("failed on node 's2'") && e.getMessage().contains("deleted it again "
                + "from 's0', 's1'"), e.getMessage());
        for (String n : List.of("s0", "s1", "s2")) {
            assertEquals(List.of(), snap(n).listSnapshots(), n);
        }
        assertEquals(0, b.inFlightCount());
        writeFirstByte(b, 1);  // not left drained
    }

    @Test
    void createDeleteAndRevertActOnEveryTarget() throws Exception {
        graph.open(opts("driver", "snap-mem", "node-name", "s0"));
        graph.open(opts("driver", "snap-mem", "node-name", "s1"));
        BlockBackend b = fanOver("s0", "s1");
        SnapshotTargets t = new SnapshotTargets(graph, b);
        writeFirstByte(b, 0xa);
        t.create("one");
        writeFirstByte(b, 0xb);
        assertEquals(Errno.EEXIST, assertThrows(BlockIOException.class, () -> t.create("one")).errno());
        assertEquals(Errno.EEXIST, assertThrows(BlockIOException.class, () -> t.create("1")).errno(),
                "an id counts as taken too");
        t.revert("one");
        assertEquals(0xa, snap("s0").firstByte());
        assertEquals(0xa, snap("s1").firstByte());
        assertEquals(Errno.ENOENT, assertThrows(BlockIOException.class, () -> t.delete("two")).errno());
        t.delete("1");
        assertEquals(List.of(), names(snap("s0").listSnapshots()));
        assertEquals(List.of(), names(snap("s1").listSnapshots()));
    }

    @Test
    void deleteChangesNothingWhenOneTargetLacksTheSnapshot() throws Exception {
        graph.open(opts("driver", "snap-mem", "node-name", "s0"));
        graph.open(opts("driver", "snap-mem", "node-name", "s1"));
        BlockBackend b = fanOver("s0", "s1");
        snap("s0").createSnapshot("only-here");
        BlockIOException e = assertThrows(BlockIOException.class,
                () -> new SnapshotTargets(graph, b).delete("only-here"));
        assertEquals(Errno.ENOENT, e.errno());
        assertTrue(e.getMessage().contains("missing from 's1'"), e.getMessage());
        assertEquals(List.of("only-here"), names(snap("s0").listSnapshots()));
    }

    @Test
    void readOnlyExportsAndBadNamesAreRefused() throws Exception {
        graph.open(opts("driver", "snap-mem", "node-name", "s0"));
        BlockBackend ro = graph.addBackend("ro", "s0", false);
        assertEquals(Errno.EROFS, assertThrows(BlockIOException.class,
                () -> new SnapshotTargets(graph, ro).create("x")).errno());
        BlockBackend rw = graph.addBackend("rw", "s0", true);
        SnapshotTargets t = new SnapshotTargets(graph, rw);
        for (String bad : List.of("", "a/b", "tab\there", ".", "..", "x".repeat(256))) {
            assertThrows(ConfigException.class, () -> t.create(bad), bad);
        }
        assertEquals(List.of(), snap("s0").listSnapshots());
    }
}
