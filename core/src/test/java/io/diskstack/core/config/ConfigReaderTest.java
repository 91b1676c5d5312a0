package io.diskstack.core.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverKind;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigReaderTest {
    @TempDir
    Path dir;

    private Path write(String json) throws Exception {
        Path p = dir.resolve("c.json");
        Files.writeString(p, json);
        return p;
    }

    @Test
    void readsTheContractExample() throws Exception {
        StackConfig c = ConfigReader.readFile(write("""
                {"objects": [{"qom-type": "secret", "id": "s0", "data": "pw"}],
                 "blockdev": [{"driver": "file", "node-name": "f0", "filename": "a.img"},
                              {"driver": "raw", "node-name": "r0", "file": "f0"}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}],
                 "create": [{"filename": "a.img", "format": "raw", "size": "1G"}]}
                """));
        assertEquals(dir.toAbsolutePath(), c.baseDir());
        assertEquals(List.of(Map.of("driver", "file", "node-name", "f0", "filename", "a.img"),
                Map.of("driver", "raw", "node-name", "r0", "file", "f0")), c.blockdevs());
        assertEquals(List.of(new ExportConfig("disk0", "r0", true)), c.exports());
        assertEquals(List.of(new ImageSpec("a.img", "raw", 1L << 30, Map.of())), c.images());
    }

    @Test
    void commandLineGivesTheSameOptions() {
        StackConfig c = ConfigReader.readArguments(List.of("secret,id=s0,data=pw"),
                List.of("driver=file,node-name=f0,filename=a.img", "{\"driver\":\"raw\",\"node-name\":\"r0\",\"file\":\"f0\"}"),
                List.of("type=fuse,id=disk0,node-name=r0,writable=on"), dir);
        assertEquals(Map.of("qom-type", "secret", "id", "s0", "data", "pw"), c.objects().get(0));
        assertEquals(Map.of("driver", "raw", "node-name", "r0", "file", "f0"), c.blockdevs().get(1));
        assertEquals(new ExportConfig("disk0", "r0", true), c.exports().get(0));
    }

    @Test
    void badFilesGiveOneLineErrors() throws Exception {
        assertError("no such file", () -> ConfigReader.readFile(dir.resolve("missing.json")));
        assertError("line 1, column 15: Unexpected close marker '}'", () -> ConfigReader.readFile(write("{\"blockdev\": [}")));
        assertError("unknown key 'blockdevs'", () -> ConfigReader.readFile(write("{\"blockdevs\": []}")));
        assertError("Duplicate field 'exports'", () -> ConfigReader.readFile(write("{\"exports\": [], \"exports\": []}")));
        assertError("blockdev[0] must be an object", () -> ConfigReader.readFile(write("{\"blockdev\": [1]}")));
        assertError("export 'disk0': 'node-name' is required",
                () -> ConfigReader.readFile(write("{\"exports\": [{\"id\": \"disk0\"}]}")));
        assertError("export 'disk0': unknown option 'writeable'",
                () -> ConfigReader.readFile(write("{\"exports\": [{\"id\": \"disk0\", \"node-name\": \"a\", \"writeable\": true}]}")));
        assertError("export 'd': 'type' value 'vhost-user-blk' is not supported (fuse or nbd)",
                () -> ConfigReader.readArguments(List.of(), List.of(), List.of("vhost-user-blk,id=d,node-name=x"), dir));
        assertError("export 'd': unknown option 'bitmap'",
                () -> ConfigReader.readArguments(List.of(), List.of(), List.of("nbd,id=d,node-name=x,bitmap=b0"), dir));
        assertError("--blockdev #1: trailing comma",
                () -> ConfigReader.readArguments(List.of(), List.of("driver=file,"), List.of(), dir));
    }

    @Test
    void nbdExportsAndTheNbdServerSection() throws Exception {
        StackConfig c = ConfigReader.readFile(write("""
                {"nbd-server": {"addr": {"type": "inet", "host": "127.0.0.1", "port": "10809"}, "max-connections": 4},
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true},
                             {"type": "nbd", "id": "e0", "node-name": "r0", "name": "vol"},
                             {"type": "nbd", "id": "e1", "node-name": "r0"}]}
                """));
        assertEquals(Map.of("addr.type", "inet", "addr.host", "127.0.0.1", "addr.port", "10809", "max-connections", 4L),
                c.nbdServer());
        assertEquals(new ExportConfig("e0", "r0", false, "nbd", Map.of("name", "vol")), c.exports().get(1));
        assertEquals("r0", c.exports().get(2).options().get("name"), "the name defaults to the node-name, as in qsd");
        assertTrue(c.exports().get(0).isFuse());
        StackConfig a = ConfigReader.readArguments(List.of(), List.of(), List.of("type=nbd,id=e0,node-name=r0,writable=on"),
                "addr.type=unix,addr.path=/tmp/s", dir);
        assertEquals(Map.of("addr.type", "unix", "addr.path", "/tmp/s"), a.nbdServer());
        assertEquals(new ExportConfig("e0", "r0", true, "nbd", Map.of("name", "r0")), a.exports().get(0));
    }

    @Test
    void argumentErrorsNeverRepeatTheArgument() {
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigReader.readArguments(
                List.of("secret,id=s0,data=hunter2-topsecret", "secret,id=s1,data=hunter3-topsecret,"), List.of(),
                List.of(), dir));
        assertEquals("--object #2: trailing comma", e.getMessage());
    }

    @Test
    void stackOpenNamesTheBadNodeAndLeavesNothingBehind() throws Exception {
        Path cfg = write("""
                {"blockdev": [{"driver": "memory", "node-name": "m0", "size": "12x"}],
                 "exports": [{"id": "disk0", "node-name": "m0", "writable": true}]}
                """);
        assertError("blockdev 'm0' (memory): 'size' value '12x' is not a size",
                () -> Stack.open(ConfigReader.readFile(cfg), DriverRegistry.load()));
        Path cfg2 = write("""
                {"blockdev": [{"driver": "memory", "node-name": "m0"}],
                 "exports": [{"id": "disk0", "node-name": "m9"}]}
                """);
        assertError("export 'disk0': 'node-name' refers to unknown node 'm9'",
                () -> Stack.open(ConfigReader.readFile(cfg2), DriverRegistry.load()));
        Path cfg3 = write("""
                {"objects": [{"qom-type": "secret", "id": "s0"}],
                 "blockdev": [{"driver": "memory", "node-name": "m0"}],
                 "exports": [{"id": "disk0", "node-name": "m0"}]}
                """);
        assertError("object 's0' (secret): 'data' or 'file' is required, and not both",
                () -> Stack.open(ConfigReader.readFile(cfg3), DriverRegistry.load()));
        Path cfg4 = write("""
                {"objects": [{"qom-type": "secret", "id": "s0", "data": "hunter2!", "format": "base64"}],
                 "blockdev": [{"driver": "memory", "node-name": "m0"}],
                 "exports": [{"id": "disk0", "node-name": "m0"}]}
                """);
        ConfigException e = assertThrows(ConfigException.class,
                () -> Stack.open(ConfigReader.readFile(cfg4), DriverRegistry.load()));
        assertTrue(!e.getMessage().contains("hunter2"), "secret leaked into: " + e.getMessage());
    }

    @Test
    void aFileAnotherProcessCreatesMeanwhileIsLeftAlone() throws Exception {
        Path cfg = write("""
                {"create": [{"filename": "a.img", "format": "racing", "size": "1M"}],
                 "blockdev": [{"driver": "memory", "node-name": "m0"}],
                 "exports": [{"id": "disk0", "node-name": "m0"}]}
                """);
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new BlockDriver() {
            @Override
            public String name() {
                return "racing";
            }

            @Override
            public DriverKind kind() {
                return DriverKind.FORMAT;
            }

            @Override
            public BlockNode open(NodeOpenContext ctx) {
                throw new UnsupportedOperationException();
            }

            @Override
            public void create(ImageCreateContext ctx) throws IOException {
                Files.writeString(ctx.file(), "someone else's"); // the other process wins the race
                throw new FileAlreadyExistsException(ctx.file().toString());
            }
        });
        assertError("create 'a.img': " + dir.resolve("a.img") + " appeared while it was being created",
                () -> Stack.open(ConfigReader.readFile(cfg), drivers));
        assertEquals("someone else's", Files.readString(dir.resolve("a.img")));
    }

    @Test
    void aSecretFileMustBeASmallRegularFile() throws Exception {
        Path fifo = dir.resolve("fifo");
        new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor();
        Path big = dir.resolve("big");
        Files.write(big, new byte[(8 << 20) + 1]);
        for (String[] c : new String[][] {{"/dev/zero", "is not a regular file"}, {fifo.toString(), "is not a regular file"},
                {big.toString(), "is larger than 8 MiB"}, {dir.resolve("none").toString(), "cannot be read"}}) {
            Path cfg = write("""
                    {"objects": [{"qom-type": "secret", "id": "s0", "file": "%s"}],
                     "blockdev": [{"driver": "memory", "node-name": "m0"}],
                     "exports": [{"id": "disk0", "node-name": "m0"}]}
                    """.formatted(c[0]));
            assertError("object 's0' (secret): 'file' '" + c[0] + "' " + c[1],
                    () -> Stack.open(ConfigReader.readFile(cfg), DriverRegistry.load()));
        }
    }

    private static void assertError(String expected, org.junit.jupiter.api.function.Executable call) {
        ConfigException e = assertThrows(ConfigException.class, call);
        assertTrue(e.getMessage().contains(expected), "message: " + e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }
}
