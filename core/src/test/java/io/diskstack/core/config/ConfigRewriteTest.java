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
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigRewriteTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private static String rewrite(String config, ConfigRewrite.Overlay... overlays) throws Exception {
        byte[] out = ConfigRewrite.withOverlays(config.getBytes(StandardCharsets.UTF_8), "config 'c.json'",
                List.of(overlays));
        return JSON.readTree(out).toString();
    }

    private static ConfigRewrite.Overlay overlay(String base, ConfigRewrite.ParentRef... parents) {
        return new ConfigRewrite.Overlay(base, List.of(parents), base + "-s1", base + "-s1-file", base + "-s1.qcow2",
                false);
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
                """, overlay("a", new ConfigRewrite.ParentRef("q", "children.0")),
                overlay("b", new ConfigRewrite.ParentRef("q", "children.1")));
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
                """, overlay("r", new ConfigRewrite.ParentRef("q", "children.0"),
                new ConfigRewrite.ParentRef("dbg", "image.file")));
        assertTrue(out.contains("\"children.0\":\"r-s1\""), out);
        assertTrue(out.contains("\"image\":{\"file\":\"r-s1\"}"), out);
    }

    @Test
    void aNamedNodeNestedInItsParentMovesToAnEntryOfItsOwn() throws Exception {
        String out = rewrite("""
                {"blockdev": [{"driver": "quorum", "node-name": "q", "children": [
                    {"driver": "raw", "node-name": "r", "file": {"driver": "file", "filename": "x.img"}}, "b"]},
                    {"driver": "raw", "node-name": "b", "file": {"driver": "file", "filename": "b.img"}}]}
                """, overlay("r", new ConfigRewrite.ParentRef("q", "children.0")));
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
        assertEquals("config 'c.json': node '#q.children.0' has no node-name there; give it one to take external "
                + "snapshots", e.getMessage());
        e = assertThrows(ConfigException.class,
                () -> rewrite(nested, overlay("d", new ConfigRewrite.ParentRef("q", "children.1"))));
        assertTrue(e.getMessage().contains("does not define node 'd' in a blockdev entry or a nested object"),
                e.getMessage());
        e = assertThrows(ConfigException.class, () -> rewrite("""
                {"blockdev": [{"driver": "raw", "node-name": "r", "file": "f"}]}
                """, overlay("r", new ConfigRewrite.ParentRef("p", "file"))));
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
}
