package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.InProcessCli.Outcome;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad usage and bad configs: exit 2, one line naming the node, option or file, and nothing
 * created or changed. These all fail before mounting, so they run in-process.
 */
class CommandLineTest {
    @TempDir
    Path dir;

    private Path config(String json) throws Exception {
        Path p = dir.resolve("c.json");
        Files.writeString(p, json);
        return p;
    }

    private void assertBadConfig(String json, String expectedMessage) throws Exception {
        Path mnt = dir.resolve("mnt");
        Outcome o = diskstack("mount", config(json).toString(), mnt.toString());
        assertEquals(2, o.code(), o.err());
        assertEquals("diskstack: " + expectedMessage + "\n", o.err());
        assertFalse(Files.exists(mnt), "the mount point is not created for a bad config");
        try (var files = Files.list(dir)) {
            assertEquals(List.of(dir.resolve("c.json")), files.toList(), "nothing else created");
        }
    }

    private static String disk(String blockdevs) {
        return "{\"blockdev\": [" + blockdevs + "], \"exports\": [{\"id\": \"disk0\", \"node-name\": \"top\"}]}";
    }

    @Test
    void missingImage() throws Exception {
        assertBadConfig(disk("{\"driver\": \"file\", \"node-name\": \"top\", \"filename\": \"nope.img\"}"),
                "blockdev 'top' (file): 'filename' '" + dir.resolve("nope.img") + "' does not exist");
    }

    @Test
    void unknownDriver() throws Exception {
        Path mnt = dir.resolve("mnt");
        Outcome o = diskstack("mount", config(disk("{\"driver\": \"qcow3\", \"node-name\": \"top\"}")).toString(),
                mnt.toString());
        assertEquals(2, o.code());
        assertTrue(o.err().startsWith("diskstack: blockdev 'top': unknown driver 'qcow3' (known: "), o.err());
        assertEquals(1, o.err().lines().count());
    }

    @Test
    void missingChild() throws Exception {
        assertBadConfig(disk("{\"driver\": \"raw\", \"node-name\": \"top\", \"file\": \"f9\"}"),
                "blockdev 'top' (raw): 'file' refers to unknown node 'f9'");
    }

    @Test
    void duplicateNodeName() throws Exception {
        assertBadConfig(disk("{\"driver\": \"raw\", \"node-name\": \"top\", \"file\": \"x\"},"
                + "{\"driver\": \"raw\", \"node-name\": \"top\", \"file\": \"x\"}"), "blockdev 'top': duplicate node-name");
    }

    @Test
    void cycle() throws Exception {
        assertBadConfig(disk("{\"driver\": \"raw\", \"node-name\": \"top\", \"file\": \"b\"},"
                        + "{\"driver\": \"raw\", \"node-name\": \"b\", \"file\": \"top\"}"),
                "blockdev 'b' (raw): 'file' makes a cycle: 'top' → 'b' → 'top'");
    }

    @Test
    void unknownOption() throws Exception {
        Files.writeString(dir.resolve("a.img"), "");
        Path mnt = dir.resolve("mnt");
        Outcome o = diskstack("mount", config(disk("{\"driver\": \"file\", \"node-name\": \"top\", \"filename\": \"a.img\","
                + " \"cache-direct\": true}")).toString(), mnt.toString());
        assertEquals(2, o.code());
        assertEquals("diskstack: blockdev 'top' (file): unknown option 'cache-direct'\n", o.err());
        assertFalse(Files.exists(mnt));
    }

    @Test
    void badSize() throws Exception {
        assertBadConfig("{\"create\": [{\"filename\": \"a.img\", \"format\": \"raw\", \"size\": \"12x\"}],"
                + " \"blockdev\": [], \"exports\": []}", "create 'a.img': 'size' value '12x' is not a size");
    }

    /** Every top-level name a control-file provider uses is refused as an export id; the message lists them. */
    @Test
    void exportIdReservedForControlFiles() throws Exception {
        for (String reserved : List.of("graph", "graph.json", "metrics", "jobs", "blockdev-add", "nbd-server", "last-error")) {
            Outcome o = diskstack("mount", config("{\"blockdev\": [], \"exports\": [{\"id\": \"" + reserved
                    + "\", \"node-name\": \"x\"}]}").toString(), dir.resolve("mnt").toString());
            assertEquals(2, o.code(), o.err());
            assertTrue(o.err().startsWith("diskstack: export '" + reserved + "': 'id' is reserved for the mount's "
                    + "control files (") && o.err().contains(" " + reserved + ",") || o.err().contains("(" + reserved
                    + ","), o.err());
        }
    }

    @Test
    void badJson() throws Exception {
        assertBadConfig("{\"blockdev\": [", "config '" + dir.resolve("c.json") + "': line 1, column 15: "
                + "Unexpected end-of-input: expected close marker for Array");
    }

    @Test
    void createdImagesAreRemovedWhenTheRestFails() throws Exception {
        assertBadConfig("{\"create\": [{\"filename\": \"new.img\", \"format\": \"raw\", \"size\": \"1M\"}],"
                + " \"blockdev\": [{\"driver\": \"raw\", \"node-name\": \"top\", \"file\": "
                + "{\"driver\": \"file\", \"filename\": \"new.img\"}, \"size\": \"2M\"}],"
                + " \"exports\": [{\"id\": \"disk0\", \"node-name\": \"top\"}]}",
                "blockdev 'top' (raw): 'size' offset + size (2097152) is past the end of the file (1048576 bytes)");
    }

    @Test
    void mountpointThatIsAFile() throws Exception {
        Path file = dir.resolve("file");
        Files.writeString(file, "x");
        Files.writeString(dir.resolve("a.img"), "");
        Outcome o = diskstack("mount", "--blockdev", "driver=file,node-name=f,filename=" + dir.resolve("a.img"),
                "--export", "id=d,node-name=f", file.toString());
        assertEquals(2, o.code());
        assertEquals("diskstack: mountpoint '" + file + "' is not a folder\n", o.err());
    }

    @Test
    void mountpointThatIsNotEmpty() throws Exception {
        Path mnt = dir.resolve("full");
        Files.createDirectories(mnt);
        Files.writeString(mnt.resolve("x"), "x");
        Files.writeString(dir.resolve("a.img"), "");
        Outcome o = diskstack("mount", "--blockdev", "driver=file,node-name=f,filename=" + dir.resolve("a.img"),
                "--export", "id=d,node-name=f", mnt.toString());
        assertEquals(2, o.code());
        assertEquals("diskstack: mountpoint '" + mnt + "' is not empty\n", o.err());
    }

    @Test
    void usageErrorsExitTwo() {
        Outcome o = diskstack("mount");
        assertEquals(2, o.code());
        assertTrue(o.err().startsWith("diskstack: Missing required parameter"), o.err());
        assertEquals(2, diskstack("frobnicate").code());
        assertEquals(2, diskstack().code());
        Outcome both = diskstack("mount", "c.json", "mnt", "--blockdev", "driver=file");
        assertEquals(2, both.code());
        assertTrue(both.err().contains("not both"), both.err());
    }

    @Test
    void helpExitsZero() {
        Outcome o = diskstack("--help");
        assertEquals(0, o.code());
        assertTrue(o.out().contains("mount") && o.out().contains("create"), o.out());
        Outcome m = diskstack("mount", "--help");
        assertEquals(0, m.code());
        assertTrue(m.out().contains("--blockdev"), m.out());
    }

    @Test
    void createMakesARawImageQemuImgAgreesWith() throws Exception {
        Path img = dir.resolve("new.img");
        Outcome o = diskstack("create", "-f", "raw", img.toString(), "512M");
        assertEquals(0, o.code(), o.err());
        assertEquals(512L << 20, Files.size(img));
        Shell.requireTool("qemu-img");
        String info = Shell.run("qemu-img", "info", "--output=json", img.toString()).ok().stdout();
        assertTrue(info.contains("\"virtual-size\": 536870912") && info.contains("\"format\": \"raw\""), info);
        Outcome again = diskstack("create", "-f", "raw", img.toString(), "1G");
        assertEquals(2, again.code());
        assertEquals("diskstack: create: '" + img + "' already exists; remove it first (nothing was changed)\n",
                again.err());
        assertEquals(512L << 20, Files.size(img));
        Outcome badSize = diskstack("create", "-f", "raw", dir.resolve("b.img").toString(), "12x");
        assertEquals(2, badSize.code());
        assertEquals("diskstack: create '" + dir.resolve("b.img") + "': size '12x' is not a size (such as 1G or 512M)\n",
                badSize.err());
        Outcome badOpt = diskstack("create", "-f", "raw", "-o", "preallocation=metadata", dir.resolve("c.img").toString(), "1M");
        assertEquals(2, badOpt.code());
        assertFalse(Files.exists(dir.resolve("c.img")), "a failed create leaves no file");
        Outcome noSize = diskstack("create", "-f", "raw", dir.resolve("d.img").toString());
        assertEquals(2, noSize.code());
        assertTrue(noSize.err().contains("a size is required"), noSize.err());
    }

    /** A passphrase given as data= sits in argv, readable by every user: one warning line, never the passphrase. */
    @Test
    void aPassphraseOnTheCommandLineGetsOneWarningLineWithoutThePassphrase() throws Exception {
        String pass = "hunter2-very-secret";
        Path img = dir.resolve("w.luks");
        Outcome o = diskstack("create", "-f", "luks", "--object", "secret,id=s0,data=" + pass, "-o",
                "key-secret=s0,iter-time=1", img.toString(), "1M");
        assertEquals(0, o.code(), o.err());
        List<String> lines = o.err().lines().toList();
        assertEquals(1, lines.size(), o.err());
        assertTrue(lines.get(0).startsWith("diskstack: warning: --object secret,id=s0 has its passphrase on the "
                + "command line (data=)") && lines.get(0).contains("give file=PATH instead"), lines.get(0));
        assertFalse(o.err().contains(pass) || o.out().contains(pass), o.err());

        Files.writeString(dir.resolve("k.txt"), pass);
        o = diskstack("luks", "add-key", "--object", "secret,id=old,file=" + dir.resolve("k.txt"), "--object",
                "qom-type=secret,id=new,data=" + pass + "-2", "--key-secret", "old", "--new-key-secret", "new",
                "--iter-time", "1", img.toString());
        assertEquals(0, o.code(), o.err());
        lines = o.err().lines().toList();
        assertEquals(1, lines.size(), "no warning for file=: " + o.err());
        assertTrue(lines.get(0).contains("secret,id=new has its passphrase on the command line"), lines.get(0));
        assertFalse(o.err().contains(pass), o.err());

        o = diskstack("mount", "--object", "secret,id=s9,data=" + pass, "--blockdev",
                "driver=file,node-name=f0,filename=" + dir.resolve("none.img"), "--export", "id=disk0,node-name=f0",
                dir.resolve("mnt").toString());
        assertEquals(2, o.code(), o.err());
        assertTrue(o.err().startsWith("diskstack: warning: --object secret,id=s9 has its passphrase"), o.err());
        assertFalse(o.err().contains(pass), o.err());
    }
}
