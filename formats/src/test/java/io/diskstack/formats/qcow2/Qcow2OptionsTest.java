package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.options.OptionTree;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The driver's options: backing as a node, nested, "" or null; cache sizes; create options. */
class Qcow2OptionsTest {
    @TempDir
    Path dir;

    private Path chain() throws Exception {
        Path base = dir.resolve("base.img");
        Files.write(base, TestGraphs.randomBytes(1, 1 << 20));
        Path top = dir.resolve("top.qcow2");
        Images.create(top, 1 << 20, "backing_file", "base.img", "backing_fmt", "raw");
        return top;
    }

    private static byte[] readAll(BlockGraph g, String node) throws Exception {
        BlockBackend b = g.addBackend("d" + node, node, false);
        ByteBuffer buf = ByteBuffer.allocate((int) b.size());
        b.read(0, buf);
        return buf.array();
    }

    @Test
    void backingFromTheHeaderAsANodeOrNone() throws Exception {
        Path top = chain();
        byte[] base = Files.readAllBytes(dir.resolve("base.img"));
        // One graph per case: image locking allows one writable user of top.qcow2 at a time.
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("implicit", top));
            assertArrayEquals(base, readAll(g, "implicit"));
            assertEquals("backing", g.node("implicit").children().get(1).name());
            assertTrue(g.node("implicit").children().get(1).node().isReadOnly(), "backing opened read-only");
        }
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            Map<String, Object> json = new HashMap<>(Map.of("driver", "qcow2", "node-name", "none",
                    "file", Map.of("driver", "file", "filename", top.toString())));
            json.put("backing", null);
            g.open(OptionTree.flatten(json));
            assertArrayEquals(new byte[1 << 20], readAll(g, "none"), "backing: null means no backing file");
        }
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(TestGraphs.opts("driver", "raw", "node-name", "other",
                    "file", Map.of("driver", "file", "filename", "base.img")));
            Map<String, Object> named = Images.node("named", top);
            named.put("backing", "other");
            g.open(named);
            assertArrayEquals(base, readAll(g, "named"));
        }
    }

    @Test
    void cacheSizesAreChecked() throws Exception {
        Path img = dir.resolve("c.qcow2");
        Images.create(img, 1 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            Map<String, Object> o = Images.node("q0", img);
            o.put("cache-size", "1M");
            o.put("l2-cache-size", "1M");
            o.put("refcount-cache-size", "1M");
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(o));
            assertEquals("blockdev 'q0' (qcow2): 'cache-size' value 1048576 is less than l2-cache-size + "
                    + "refcount-cache-size", e.getMessage());
            Map<String, Object> typo = Images.node("q1", img);
            typo.put("l2-cache-sise", "1M");
            e = assertThrows(ConfigException.class, () -> g.open(typo));
            assertEquals("blockdev 'q1' (qcow2): unknown option 'l2-cache-sise'", e.getMessage());
            Map<String, Object> ok = Images.node("q2", img);
            ok.put("cache-size", "4M");
            g.open(ok);
        }
    }

    @Test
    void createOptionsAreChecked() {
        Path img = dir.resolve("x.qcow2");
        ConfigException e = assertThrows(ConfigException.class,
                () -> Images.create(img, 1 << 20, "cluster_size", "1000"));
        assertTrue(e.getMessage().contains("'cluster_size' value 1000 must be a power of two"), e.getMessage());
        e = assertThrows(ConfigException.class, () -> Images.create(img, 1 << 20, "compat", "0.10",
                "lazy_refcounts", "on"));
        assertTrue(e.getMessage().contains("'lazy_refcounts' needs compat=1.1"), e.getMessage());
        e = assertThrows(ConfigException.class, () -> Images.create(img, -1));
        assertTrue(e.getMessage().contains("a size is required"), e.getMessage());
        e = assertThrows(ConfigException.class, () -> Images.create(img, 1 << 20, "preallocation", "fast"));
        assertTrue(e.getMessage().contains("is not one of off, metadata, falloc, full"), e.getMessage());
        e = assertThrows(ConfigException.class, () -> Images.create(img, 1 << 20, "backing_file", "nope.qcow2"));
        assertTrue(e.getMessage().contains("'backing_file' 'nope.qcow2' does not exist"), e.getMessage());
        e = assertThrows(ConfigException.class, () -> Images.create(img, 1 << 20, "clustersize", "4k"));
        assertTrue(e.getMessage().contains("unknown option 'clustersize'"), e.getMessage());
        assertTrue(!Files.exists(img) || e.getMessage().contains("unknown"));
    }

    @Test
    void overlapCheckTakesQemusModesAndPerKindOptions() throws Exception {
        Path img = dir.resolve("oc.qcow2");
        Images.create(img, 1 << 20);
        for (String mode : new String[] {"none", "constant", "cached", "all"}) {
            try (BlockGraph g = TestGraphs.newGraph(dir)) {
                Map<String, Object> o = Images.node("q0", img);
                o.put("overlap-check", mode);
                g.open(o);
                g.addBackend("d", "q0", true).write(0, ByteBuffer.wrap(new byte[512]), 0);
            }
        }
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            Map<String, Object> o = Images.node("q0", img);
            o.put("overlap-check.template", "constant");
            o.put("overlap-check.active-l2", "on");
            o.put("overlap-check.inactive-l2", true);
            g.open(o);
        }
        String[][] bad = {
            {"overlap-check", "most", "blockdev 'q0' (qcow2): 'overlap-check' value 'most' is not one of none, "
                + "constant, cached, all"},
            {"overlap-check.template", "some", "'overlap-check.template' value 'some' is not one of"},
            {"overlap-check.main-header", "maybe", "'overlap-check.main-header' value 'maybe' is not on/off"},
            {"overlap-check.l3-table", "on", "unknown option 'overlap-check.l3-table'"},
        };
        for (String[] b : bad) {
            try (BlockGraph g = TestGraphs.newGraph(dir)) {
                Map<String, Object> o = Images.node("q0", img);
                o.put(b[0], b[1]);
                ConfigException e = assertThrows(ConfigException.class, () -> g.open(o));
                assertTrue(e.getMessage().contains(b[2]), e.getMessage());
            }
        }
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            Map<String, Object> o = Images.node("q0", img);
            o.put("overlap-check", "all");
            o.put("overlap-check.inactive-l2", "off");
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(o));
            assertTrue(e.getMessage().contains("'overlap-check' is given both as a mode and with per-kind options"),
                    e.getMessage());
        }
    }
}
