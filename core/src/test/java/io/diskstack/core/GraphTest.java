package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.control.GraphView;
import io.diskstack.core.testing.Background;
import io.diskstack.core.testing.MemoryDriver;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GraphTest {
    @TempDir
    Path dir;

    private BlockGraph graph() {
        return TestGraphs.newGraph(dir);
    }

    @Test
    void openAllResolvesForwardReferences() throws Exception {
        try (BlockGraph g = graph()) {
            g.openAll(List.of(
                    opts("driver", "passthrough", "node-name", "top", "file", "mid"),
                    opts("driver", "passthrough", "node-name", "mid", "file", "m0"),
                    opts("driver", "memory", "node-name", "m0")));
            BlockNode top = g.node("top");
            assertEquals("mid", top.child("file").node().nodeName());
            assertEquals("passthrough(top, passthrough(mid, memory(m0)))", top.toString());
            assertSame(g.node("mid"), g.node("m0").parents().get(0).parent());
        }
    }

    @Test
    void nestedChildrenGetAutomaticNames() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "passthrough", "node-name", "top",
                    "file", Map.of("driver", "passthrough", "file", Map.of("driver", "memory"))));
            assertEquals("#top.file", g.node("top").child("file").node().nodeName());
            assertEquals("#top.file.file", g.node("#top.file").child("file").node().nodeName());
        }
    }

    @Test
    void cyclesAreRejectedWithTheirPath() {
        try (BlockGraph g = graph()) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.openAll(List.of(
                    opts("driver", "passthrough", "node-name", "a", "file", "b"),
                    opts("driver", "passthrough", "node-name", "b", "file", "a"))));
            assertEquals("blockdev 'b' (passthrough): 'file' makes a cycle: 'a' → 'b' → 'a'", e.getMessage());
        }
    }

    @Test
    void selfReferenceIsACycle() {
        try (BlockGraph g = graph()) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.openAll(List.of(
                    opts("driver", "passthrough", "node-name", "a", "file", "a"))));
            assertTrue(e.getMessage().contains("cycle"), e.getMessage());
        }
    }

    @Test
    void danglingChildIsRejected() {
        try (BlockGraph g = graph()) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.openAll(List.of(
                    opts("driver", "passthrough", "node-name", "a", "file", "nowhere"))));
            assertEquals("blockdev 'a' (passthrough): 'file' refers to unknown node 'nowhere'", e.getMessage());
        }
    }

    @Test
    void missingChildIsRejected() {
        try (BlockGraph g = graph()) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(
                    opts("driver", "passthrough", "node-name", "a")));
            assertEquals("blockdev 'a' (passthrough): 'file' is required", e.getMessage());
        }
    }

    @Test
    void duplicateNodeNamesAreRejected() {
        try (BlockGraph g = graph()) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.openAll(List.of(
                    opts("driver", "memory", "node-name", "m0"),
                    opts("driver", "memory", "node-name", "m0"))));
            assertEquals("blockdev 'm0': duplicate node-name", e.getMessage());
        }
    }

    @Test
    void unknownOptionsAndDriversAreRejected() {
        try (BlockGraph g = graph()) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(
                    opts("driver", "memory", "node-name", "m0", "colour", "blue")));
            assertEquals("blockdev 'm0' (memory): unknown option 'colour'", e.getMessage());
            e = assertThrows(ConfigException.class, () -> g.open(opts("driver", "floppy", "node-name", "m1")));
            assertTrue(e.getMessage().startsWith("blockdev 'm1': unknown driver 'floppy' (known: "), e.getMessage());
            e = assertThrows(ConfigException.class, () -> g.open(opts("driver", "memory", "node-name", "1bad")));
            assertTrue(e.getMessage().contains("'node-name' must start with a letter"), e.getMessage());
            assertNull(g.node("m0"), "a node that failed to open is not in the graph");
        }
    }

    @Test
    void failedOpenClosesTheNestedChildrenItOpened() {
        MemoryDriver.CLOSED.clear();
        try (BlockGraph g = graph()) {
            assertThrows(ConfigException.class, () -> g.open(opts("driver", "passthrough", "node-name", "a",
                    "file", Map.of("driver", "memory"), "bogus", 1)));
            assertTrue(g.nodes().isEmpty(), "nothing left: " + g.nodes());
            assertEquals(List.of("a", "#a.file"), MemoryDriver.CLOSED);
        }
    }

    @Test
    void insertAboveKeepsParentsAndBackends() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "passthrough", "node-name", "top", "file", "m0"));
            BlockBackend b = g.addBackend("disk0", "top", true);
            BlockNode m0 = g.node("m0");
            BlockNode mid = g.insertAbove(m0, opts("driver", "passthrough", "node-name", "mid", "file", "m0"));
            assertSame(mid, g.node("top").child("file").node());
            assertSame(m0, mid.child("file").node());
            b.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}), 0);
            ByteBuffer back = ByteBuffer.allocate(3);
            b.read(0, back);
            assertEquals(2, back.get(1));
        }
    }

    @Test
    void insertAboveTheExportedNodeMovesTheBackend() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            BlockBackend b = g.addBackend("disk0", "m0", true);
            BlockNode f = g.insertAbove(g.node("m0"), opts("driver", "passthrough", "node-name", "f", "file", "m0"));
            assertSame(f, b.rootNode());
        }
    }

    @Test
    void insertBelowPutsANodeUnderOneEdge() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "passthrough", "node-name", "top", "file", "m0"));
            BlockNode below = g.insertBelow(g.node("top"), "file",
                    opts("driver", "passthrough", "node-name", "below", "file", "m0"));
            assertSame(below, g.node("top").child("file").node());
            assertEquals(List.of(below.child("file")), g.node("m0").parents());
        }
    }

    @Test
    void replaceThatWouldMakeACycleIsRefused() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "passthrough", "node-name", "a", "file", "m0"));
            g.open(opts("driver", "passthrough", "node-name", "b", "file", "a"));
            ConfigException e = assertThrows(ConfigException.class, () -> g.replace(g.node("m0"), g.node("b")));
            assertTrue(e.getMessage().contains("cycle"), e.getMessage());
            assertSame(g.node("m0"), g.node("a").child("file").node(), "graph unchanged");
        }
    }

    @Test
    void removeRefusesNodesInUse() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "passthrough", "node-name", "a", "file", "m0"));
            ConfigException e = assertThrows(ConfigException.class, () -> g.remove(g.node("m0")));
            assertEquals("node 'm0' is in use by 'a'", e.getMessage());
            g.remove(g.node("a"));
            g.remove(g.node("m0"));
            assertTrue(g.nodes().isEmpty());
        }
    }

    @Test
    void closeGoesParentsFirst() throws Exception {
        MemoryDriver.CLOSED.clear();
        BlockGraph g = graph();
        g.openAll(List.of(
                opts("driver", "memory", "node-name", "m0"),
                opts("driver", "passthrough", "node-name", "a", "file", "m0"),
                opts("driver", "passthrough", "node-name", "b", "file", "a")));
        g.addBackend("disk0", "b", true);
        assertTrue(g.closeAndReport());
        assertEquals(List.of("b", "a", "m0"), MemoryDriver.CLOSED);
    }

    @Test
    void drainWaitsForRequestsAndHoldsNewOnes() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            BlockBackend b = g.addBackend("disk0", "m0", true);
            Background<Void> writer;
            try (BlockGraph.Drained d = g.drain(List.of(g.node("m0")))) {
                writer = Background.start("writer", () -> b.write(0, ByteBuffer.wrap(new byte[] {9}), 0));
                writer.assertBlocked("a write must wait while the backend is drained");
            }
            writer.join();
            ByteBuffer back = ByteBuffer.allocate(1);
            b.read(0, back);
            assertEquals(9, back.get(0), "the write goes on after resume");
        }
    }

    @Test
    void readOnlyExportsAndNodesRefuseWrites() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "memory", "node-name", "ro", "read-only", true));
            BlockBackend b = g.addBackend("disk0", "m0", false);
            BlockIOException e = assertThrows(BlockIOException.class, () -> b.write(0, ByteBuffer.allocate(1), 0));
            assertEquals(Errno.EROFS, e.errno());
            ConfigException c = assertThrows(ConfigException.class, () -> g.addBackend("disk1", "ro", true));
            assertTrue(c.getMessage().contains("read-only"), c.getMessage());
        }
    }

    @Test
    void graphViewDrawsTheTree() throws Exception {
        try (BlockGraph g = graph()) {
            g.openAll(List.of(
                    opts("driver", "memory", "node-name", "m0", "size", "1M"),
                    opts("driver", "passthrough", "node-name", "top", "file", "m0")));
            g.addBackend("disk0", "top", true);
            assertEquals("""
                    disk0  export  writable  1 MiB
                    └── top  passthrough  1 MiB
                        └── file: m0  memory  1 MiB  memory:m0
                    """, GraphView.render(g));
        }
    }
}
