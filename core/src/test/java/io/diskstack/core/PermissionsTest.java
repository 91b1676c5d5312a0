package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.TestGraphs;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Permissions on edges: two writers of one image are refused, at open and at every later change. */
class PermissionsTest {
    @TempDir
    Path dir;

    private BlockGraph graph() {
        return TestGraphs.newGraph(dir);
    }

    @Test
    void twoFormatsWritingOneFileAreRefusedNamingBoth() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "f0"));
            g.open(opts("driver", "image", "node-name", "q0", "file", "f0"));
            ConfigException e = assertThrows(ConfigException.class,
                    () -> g.open(opts("driver", "image", "node-name", "q1", "file", "f0")));
            assertEquals("blockdev 'q1' (image): 'file' f0 is already written by 'q0' (image), which does not share "
                    + "write", e.getMessage());
            assertEquals(Errno.EBUSY, e.errno());
            assertNull(g.node("q1"));
            assertEquals(1, g.node("f0").parents().size(), "the refused node left no edge behind");
        }
    }

    @Test
    void filtersPassThroughWhatTheirUsersShareSoTwoExportsOfOneNodeWork() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "f0"));
            g.open(opts("driver", "passthrough", "node-name", "p0", "file", "f0"));
            g.open(opts("driver", "passthrough", "node-name", "p1", "file", "f0"));
            g.addBackend("d0", "p0", true);
            g.addBackend("d1", "p1", true);
            BlockChild edge = g.node("p0").child("file");
            assertEquals(EnumSet.of(Permission.CONSISTENT_READ, Permission.WRITE, Permission.WRITE_UNCHANGED),
                    edge.permissions().taken());
            assertEquals(EnumSet.allOf(Permission.class), edge.permissions().shared());
        }
    }

    @Test
    void anExportThatWouldWriteBesideAFormatIsRefused() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "f0"));
            g.open(opts("driver", "image", "node-name", "q0", "file", "f0"));
            g.open(opts("driver", "passthrough", "node-name", "p0", "file", "f0"));
            g.addBackend("d0", "q0", true);
            g.addBackend("ro", "p0", false); // reading beside it is fine
            ConfigException e = assertThrows(ConfigException.class, () -> g.addBackend("d1", "f0", true));
            assertEquals("export 'd1': node f0 is already written by 'q0' (image), which does not share write",
                    e.getMessage());
            assertNull(g.backend("d1"));
        }
    }

    @Test
    void aReadOnlyNodeTakesNoWriteAndRefusesWriters() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "f0", "read-only", true));
            g.open(opts("driver", "image", "node-name", "q0", "file", "f0", "read-only", true));
            ConfigException e = assertThrows(ConfigException.class,
                    () -> g.open(opts("driver", "image", "node-name", "q1", "file", "f0")));
            assertTrue(e.getMessage().startsWith("blockdev 'q1' (image): 'file' f0 is read-only"), e.getMessage());
        }
    }

    @Test
    void freezingABaseThatAnotherUserWritesIsRefusedAndChangesNothing() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "f0"));
            g.open(opts("driver", "passthrough", "node-name", "r0", "file", "f0"));
            g.open(opts("driver", "passthrough", "node-name", "r1", "file", "f0"));
            g.addBackend("d0", "r0", true);
            g.addBackend("d1", "r1", true);
            ConfigException e = assertThrows(ConfigException.class, () -> g.freeze(List.of(g.node("r0"))));
            assertEquals(Errno.EBUSY, e.errno());
            assertTrue(e.getMessage().contains("read-only"), e.getMessage());
            assertTrue(!g.node("r0").isReadOnly() && !g.node("f0").isReadOnly(), "nothing frozen");
        }
    }

    @Test
    void aHoldTakesPermissionsForAJobUntilItIsClosed() throws Exception {
        try (BlockGraph g = graph()) {
            g.open(opts("driver", "memory", "node-name", "t0"));
            BlockGraph.Hold hold = g.hold(g.node("t0"), Permissions.soleWriter(true), "job 'mirror-x'");
            ConfigException e = assertThrows(ConfigException.class, () -> g.addBackend("d0", "t0", true));
            assertEquals("export 'd0': node t0 is already written by job 'mirror-x', which does not share write",
                    e.getMessage());
            hold.close();
            BlockBackend d0 = g.addBackend("d0", "t0", true);
            assertSame(g.node("t0"), d0.rootNode());
            e = assertThrows(ConfigException.class,
                    () -> g.hold(g.node("t0"), Permissions.soleWriter(true), "job 'mirror-x'"));
            assertEquals("job 'mirror-x': node t0 is written by export 'd0', and this use does not share write",
                    e.getMessage());
            assertEquals(Set.of(), Set.copyOf(g.node("t0").parents().stream()
                    .filter(p -> p.name().equals("hold")).toList()), "a refused hold leaves nothing");
        }
    }
}
