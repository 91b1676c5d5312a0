package io.diskstack.core.options;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.ConfigException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class OptionsTest {
    @Test
    void sizesParseLikeQemuImg() {
        assertEquals(1L << 30, Sizes.parse("1G"));
        assertEquals(512L << 20, Sizes.parse("512M"));
        assertEquals(512L << 20, Sizes.parse("512MiB"));
        assertEquals(1536L << 20, Sizes.parse("1.5G"));
        assertEquals(4096, Sizes.parse("4096"));
        assertEquals(64 << 10, Sizes.parse("64k"));
        assertEquals(10, Sizes.parse("10B"));
        for (String bad : List.of("", "G", "12x", "-1", "1.G", "99999999999E", "1.5", "0.3K")) {
            assertThrows(IllegalArgumentException.class, () -> Sizes.parse(bad), bad);
        }
        assertEquals("1 GiB", Sizes.format(1L << 30));
        assertEquals("1.5 MiB", Sizes.format(3L << 19));
        assertEquals("1000 B", Sizes.format(1000));
    }

    @Test
    void keyValParsesQemuSyntax() {
        assertEquals(Map.of("qom-type", "secret", "id", "s0", "data", "a,b"),
                KeyVal.parse("secret,id=s0,data=a,,b", "qom-type"));
        assertEquals(Map.of("driver", "quorum", "children.0", "a", "children.1", "b", "vote-threshold", "2"),
                KeyVal.parse("driver=quorum,children.0=a,children.1=b,vote-threshold=2", null));
        assertEquals(Map.of("filename", "x=y"), KeyVal.parse("filename=x=y", null));
        assertThrows(IllegalArgumentException.class, () -> KeyVal.parse("driver=file,driver=raw", null));
        assertThrows(IllegalArgumentException.class, () -> KeyVal.parse("file", null));
        assertThrows(IllegalArgumentException.class, () -> KeyVal.parse("a=1,", null));
        assertThrows(IllegalArgumentException.class, () -> KeyVal.parse("a=1,b", null));
        assertThrows(IllegalArgumentException.class, () -> KeyVal.parse("=1", null));
        assertThrows(IllegalArgumentException.class, () -> KeyVal.parse("file=a,file.driver=b", null));
    }

    @Test
    void flattenJoinsNestedKeys() {
        Map<String, Object> flat = OptionTree.flatten(Map.of(
                "file", Map.of("driver", "file", "filename", "a.img"),
                "children", List.of("x", Map.of("driver", "raw")),
                "n", 5));
        assertEquals(Map.of("file.driver", "file", "file.filename", "a.img", "children.0", "x",
                "children.1.driver", "raw", "n", 5L), flat);
        assertThrows(IllegalArgumentException.class,
                () -> OptionTree.flatten(Map.of("a.b", 1, "a", Map.of("b", 2))));
    }

    @Test
    void readerConvertsAndNamesOwnerAndKey() {
        NodeOptions o = new NodeOptions("blockdev 't0' (throttle)", Map.of(
                "a", "on", "b", false, "c", "64K", "d", 12L, "e", "12x", "f", "write-back", "g", "7"));
        assertTrue(o.optBool("a", false));
        assertFalse(o.optBool("b", true));
        assertEquals(65536, o.optSize("c", 0));
        assertEquals(12, o.optLong("d", 0));
        ConfigException e = assertThrows(ConfigException.class, () -> o.optSize("e", 0));
        assertEquals("blockdev 't0' (throttle): 'e' value '12x' is not a size", e.getMessage());
        e = assertThrows(ConfigException.class, () -> o.optEnum("f", Mode.class, Mode.OFF));
        assertEquals("blockdev 't0' (throttle): 'f' value 'write-back' is not one of off, write-through",
                e.getMessage());
        e = assertThrows(ConfigException.class, () -> o.optLong("g", 0, 10, 20));
        assertEquals("blockdev 't0' (throttle): 'g' value 7 is out of range [10, 20]", e.getMessage());
        o.assertAllConsumed();
        NodeOptions left = new NodeOptions("x", Map.of("typo", 1L));
        e = assertThrows(ConfigException.class, left::assertAllConsumed);
        assertEquals("x: unknown option 'typo'", e.getMessage());
    }

    @Test
    void childrenAndListsComeAsNamesOrNestedMaps() {
        NodeOptions o = new NodeOptions("q", Map.of("children.0", "a", "children.1.driver", "raw",
                "children.1.file", "f", "file", "z"));
        List<Object> list = o.takeList("children");
        assertEquals(List.of("a", Map.of("driver", "raw", "file", "f")), list);
        assertEquals("z", o.takeChild("file"));
        o.assertAllConsumed();
        NodeOptions gap = new NodeOptions("q", Map.of("children.0", "a", "children.2", "b"));
        ConfigException e = assertThrows(ConfigException.class, () -> gap.takeList("children"));
        assertEquals("q: 'children.1' is missing: list indexes must run 0, 1, 2, …", e.getMessage());
    }

    enum Mode { OFF, WRITE_THROUGH }

    @Test
    void jsonNullFlattensToTheEmptyString() {
        Map<String, Object> nested = new java.util.HashMap<>();
        nested.put("driver", "qcow2");
        nested.put("backing", null);
        Map<String, Object> flat = OptionTree.flatten(nested);
        assertEquals("", flat.get("backing"));
        assertEquals("", new NodeOptions("q", flat).takeChild("backing"));
    }
}
