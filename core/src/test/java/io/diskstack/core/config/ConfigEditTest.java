package io.diskstack.core.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigEditTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** What an external snapshot records: an overlay after each base, references moved to it. */
    private static String rewrite(String config, Overlay... overlays) throws Exception {
        ConfigEdit edit = ConfigEdit.of(config.getBytes(StandardCharsets.UTF_8), "config 'c.json'");
        for (Overlay o : overlays) {
            edit.set(o.base, "read-only", true);
            Map<String, Object> file = new LinkedHashMap<>();
            file.put("driver", "file");
            file.put("node-name", o.base + "-s1-file");
            file.put("filename", o.base + "-s1.qcow2");
            Map<String, Object> overlay = new LinkedHashMap<>();
            overlay.put("driver", "qcow2");
            overlay.put("node-name", o.base + "-s1");
            overlay.put("file", file);
            overlay.put("backing", o.base);
            edit.insertAfter(o.base, overlay);
            for (String[] p : o.parents) {
                edit.repoint(p[0], p[1], o.base, o.base + "-s1");
            }
            edit.repointExports(o.base, o.base + "-s1");
        }
        return JSON.readTree(edit.toBytes()).toString();
    }

    private record Overlay(String base, String[][] parents) {}

    private static Overlay overlay(String base, String[]... parents) {
        return new Overlay(base, parents);
    }

    private static String[] parent(String node, String edge) {
        return new String[] {node, edge};
    }

    @Test
    void recordsOverlaysAfterTheirBasesAndRepointsChildrenAndExports() throws Exception {
        String out = rewrite("""
                {"blockdev": [{"driver": "qcow2", "node-name": "a", "file": {"driver": "file", "filename": "a.qcow2"}},
                              {"driver": "qcow2", "node-name": "b", "file": {"driver": "file", "filename": "b.qcow2"}},
                              {"driver": "quorum", "node-name": "q", "children": ["a", "b"], "vote-threshold": 1},
                              {"driver": "throttle", "node-name": "t", "file": "q", "throttle-group": "g",
                               "children.0": "not-an-edge"}],
                 "exports": [{"id": "d", "node-name": "t", "writable": true}, {"id": "e", "node-name": "a"}]}
                """, overlay("a", parent("q", "children.0")),
                overlay("b", parent("q", "children.1")));
        assertEquals("""
                {"blockdev":[{"driver":"qcow2","node-name":"a","file":{"driver":"file","filename":"a.qcow2"},\
                "read-only":true},\
                {"driver":"file","node-name":"a-s1-file","filename":"a-s1.qcow2"},\
                {"driver":"qcow2","node-name":"a-s1","file":"a-s1-file","backing":"a"},\
                {"driver":"qcow2","node-name":"b","file":{"driver":"file","filename":"b.qcow2"},"read-only":true},\
                {"driver":"file","node-name":"b-s1-file","filename":"b-s1.qcow2"},\
                {"driver":"qcow2","node-name":"b-s1","file":"b-s1-file","backing":"b"},\
                {"driver":"quorum","node-name":"q","children":["a-s1","b-s1"],"vote-threshold":1},\
                {"driver":"throttle","node-name":"t","file":"q","throttle-group":"g","children.0":"not-an-edge"}],\
                "exports":[{"id":"d","node-name":"t","writable":true},{"id":"e","node-name":"a-s1"}]}""", out);
    }

    @Test
    void findsReferencesSpelledDottedOrNestedInsideOtherNodes() throws Exception {
        String out = rewrite("""
                {"blockdev": [{"driver": "raw", "node-name": "r", "file": "f"},
                              {"driver": "file", "node-name": "f", "filename": "x.img"},
                              {"driver": "quorum", "node-name": "q", "children.0": "r", "children.1": {
                                  "driver": "blkdebug", "node-name": "dbg", "image": {"file": "r"}}}]}
                """, overlay("r", parent("q", "children.0"),
                parent("dbg", "image.file")));
        assertTrue(out.contains("\"children.0\":\"r-s1\""), out);
        assertTrue(out.contains("\"image\":{\"file\":\"r-s1\"}"), out);
    }

    @Test
    void aNamedNodeNestedInItsParentMovesToAnEntryOfItsOwn() throws Exception {
        String out = rewrite("""
                {"blockdev": [{"driver": "quorum", "node-name": "q", "children": [
                    {"driver": "raw", "node-name": "r", "file": {"driver": "file", "filename": "x.img"}}, "b"]},
                    {"driver": "raw", "node-name": "b", "file": {"driver": "file", "filename": "b.img"}}]}
                """, overlay("r", parent("q", "children.0")));
        assertEquals("""
                {"blockdev":[{"driver":"quorum","node-name":"q","children":["r-s1","b"]},\
                {"driver":"raw","node-name":"b","file":{"driver":"file","filename":"b.img"}},\
                {"driver":"raw","node-name":"r","file":{"driver":"file","filename":"x.img"},"read-only":true},\
                {"driver":"file","node-name":"r-s1-file","filename":"r-s1.qcow2"},\
                {"driver":"qcow2","node-name":"r-s1","file":"r-s1-file","backing":"r"}]}""", out);
    }

    @Test
    void refusesNodesTheConfigDoesNotName() {
        String nested = """
                {"blockdev": [{"driver": "quorum", "node-name": "q", "children": [
                    {"driver": "raw", "file": {"driver": "file", "filename": "x.img"}}],
                    "children.1.driver": "raw", "children.1.node-name": "d", "children.1.file": "f"}]}
                """;
        ConfigException e = assertThrows(ConfigException.class, () -> rewrite(nested, overlay("#q.children.0")));
        assertEquals("config 'c.json': node '#q.children.0' has no node-name there; give it one to change the graph "
                + "around it", e.getMessage());
        e = assertThrows(ConfigException.class,
                () -> rewrite(nested, overlay("d", parent("q", "children.1"))));
        assertTrue(e.getMessage().contains("does not define node 'd' in a blockdev entry or a nested object"),
                e.getMessage());
        e = assertThrows(ConfigException.class, () -> rewrite("""
                {"blockdev": [{"driver": "raw", "node-name": "r", "file": "f"}]}
                """, overlay("r", parent("p", "file"))));
        assertTrue(e.getMessage().contains("used by 'p', which has no entry"), e.getMessage());
    }

    @Test
    void writesAtomicallyKeepingPermissions() throws Exception {
        Path file = dir.resolve("c.json");
        Files.writeString(file, "{}");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r-----"));
        ConfigRewrite.writeAtomically(file, "{\"a\": 1}\n".getBytes(StandardCharsets.UTF_8));
        assertEquals("{\"a\": 1}\n", Files.readString(file));
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList());
        }
        assertFalse(Files.exists(dir.resolve("c.json.tmp")));
    }

    /** Staged content stays beside the file until the commit; a discard leaves nothing behind. */
    @Test
    void stagedContentReplacesTheFileOnlyOnCommit() throws Exception {
        Path file = dir.resolve("c.json");
        Files.writeString(file, "{}");
        ConfigRewrite.Staged dropped = ConfigRewrite.stage(file, "{\"a\": 1}\n".getBytes(StandardCharsets.UTF_8));
        assertEquals("{}", Files.readString(file));
        dropped.discard();
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList());
        }
        ConfigRewrite.Staged kept = ConfigRewrite.stage(file, "{\"b\": 2}\n".getBytes(StandardCharsets.UTF_8));
        assertEquals("{}", Files.readString(file));
        kept.commit();
        assertEquals("{\"b\": 2}\n", Files.readString(file));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList());
        }
    }

    @Test
    void recordsRemovesAndReadsBackExternalSnapshots() throws Exception {
        ConfigEdit edit = ConfigEdit.of("{\"blockdev\": []}".getBytes(StandardCharsets.UTF_8), "c");
        edit.addSnapshot(new ExternalSnapshotRecord("s1", "disk0", List.of("a-s1", "b-s1")));
        edit.addSnapshot(new ExternalSnapshotRecord("s2", "disk0", List.of("a-s2")));
        edit.removeSnapshots(List.of("s1"));
        ConfigEdit again = ConfigEdit.of(edit.toBytes(), "c");
        assertEquals(List.of(new ExternalSnapshotRecord("s2", "disk0", List.of("a-s2"))), again.snapshots());
        again.removeSnapshots(List.of("s2"));
        assertEquals("{\"blockdev\":[]}", JSON.readTree(again.toBytes()).toString(), "an empty list goes");
    }

    @Test
    void removesAnEntryAndRefusesToRepointAReferenceThatIsNotThere() throws Exception {
        ConfigEdit edit = ConfigEdit.of("""
                {"blockdev": [{"driver": "file", "node-name": "f", "filename": "x"},
                              {"driver": "raw", "node-name": "r", "file": "f"}]}
                """.getBytes(StandardCharsets.UTF_8), "c");
        edit.removeNode("f");
        ConfigException e = assertThrows(ConfigException.class, () -> edit.repoint("r", "backing", "f", "g"));
        assertEquals("c: the entry of node 'r' does not name 'f' as 'backing'", e.getMessage());
        edit.repoint("r", "file", "f", "g");
        assertEquals("{\"blockdev\":[{\"driver\":\"raw\",\"node-name\":\"r\",\"file\":\"g\"}]}",
                JSON.readTree(edit.toBytes()).toString());
    }
}
