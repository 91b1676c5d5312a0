package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.snapshot.ExternalSnapshots;
import io.diskstack.core.snapshot.SnapshotTargets;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shape model: walks follow what nodes declare, never driver names. */
class ShapeTest {
    @TempDir
    Path dir;
    private BlockGraph graph;

    @BeforeEach
    void setUp() {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new SnapshotTargetsTest.SnapDriver());
        graph = new BlockGraph(drivers, ObjectRegistry.load(), dir);
    }

    @AfterEach
    void tearDown() {
        graph.close();
    }

    private List<String> names(List<BlockNode> nodes) {
        return nodes.stream().map(BlockNode::nodeName).toList();
    }

    @Test
    void aTwoChildNodeThatFansOutGetsInternalSnapshotsInBothChildren() throws Exception {
        graph.open(opts("driver", "snap-mem", "node-name", "meta"));
        graph.open(opts("driver", "snap-mem", "node-name", "data"));
        graph.open(opts("driver", "pair", "node-name", "p0", "metadata", "meta", "data", "data"));
        graph.open(opts("driver", "passthrough", "node-name", "top", "file", "p0"));
        BlockBackend b = graph.addBackend("d0", "top", true);
        SnapshotTargets targets = new SnapshotTargets(graph, b);
        assertEquals(List.of("meta", "data"), targets.targets().stream().map(t -> t.node().nodeName()).toList());
        targets.create("s1");
        for (String n : List.of("meta", "data")) {
            assertEquals("s1", ((SnapshotTargetsTest.SnapNode) graph.node(n)).listSnapshots().get(0).name(), n);
        }
    }

    @Test
    void theWalkPassesFiltersAndFansOutToTheImages() throws Exception {
        graph.open(opts("driver", "memory", "node-name", "meta"));
        graph.open(opts("driver", "memory", "node-name", "data"));
        graph.open(opts("driver", "pair", "node-name", "p0", "metadata", "meta", "data", "data"));
        graph.open(opts("driver", "passthrough", "node-name", "top", "file", "p0"));
        assertEquals(List.of("meta", "data"), names(GraphWalk.images(graph.node("top"))),
                "a fan-out node passes the walk to both children");
        assertSame(graph.node("p0"), GraphWalk.skipFilters(graph.node("top")));
        assertNull(graph.node("p0").filteredChild(), "two children are not a plain filter");
        assertEquals(List.of("meta", "data"), names(GraphWalk.landings(graph.node("top"),
                n -> n.driver().kind() == DriverKind.PROTOCOL, "is a protocol")));
    }

    @Test
    void aNodeWithoutAnImageFileGetsEinvalForAnExternalSnapshot() throws Exception {
        graph.open(opts("driver", "memory", "node-name", "net0"));
        graph.open(opts("driver", "passthrough", "node-name", "top", "file", "net0"));
        BlockNode base = ExternalSnapshots.snapshotPoints(graph.node("top")).get(0);
        assertSame(graph.node("net0"), base);
        BlockIOException e = assertThrows(BlockIOException.class, () -> ExternalSnapshots.plan(graph, List.of(base),
                "s1", null, graph.drivers().get("image", "test")));
        assertEquals(Errno.EINVAL, e.errno());
        assertEquals("node 'net0' (memory) is not an image an overlay can name as its backing file", e.getMessage());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(0, files.count(), "no file was made");
        }
    }

    /** What decides by a driver's name: a literal driver name compared, looked up or written as "driver". */
    private static final Pattern BY_NAME = Pattern.compile(
            "((?<!format)\\.(equals|get|has)\\(\"(raw|file|qcow2|luks|quorum|throttle|copy-on-read|blkdebug|dedup|nbd)\"[,)])"
            + "|(put\\(\"driver\",\\s*\")"
            + "|([?:]\\s*\"(raw|qcow2|luks|quorum|throttle|copy-on-read|blkdebug|dedup|nbd)\")"
            + "|(\"(raw|qcow2|luks|quorum|throttle|copy-on-read|blkdebug|dedup|nbd)\"\\.equals)");

    @Test
    void coreNamesNoDriver() throws IOException {
        Path main = Path.of("src/main/java");
        List<String> found = new ArrayList<>();
        try (Stream<Path> files = Files.walk(main)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String code = Files.readString(f).replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\\n]*", "");
                Matcher m = BY_NAME.matcher(code);
                while (m.find()) {
                    found.add(main.relativize(f) + ": " + m.group());
                }
            }
        }
        assertTrue(found.isEmpty(), "core decides by driver names: " + found);
        assertTrue(Files.isDirectory(main.resolve("io/diskstack/core")), "the scan ran over core's sources");
    }
}
