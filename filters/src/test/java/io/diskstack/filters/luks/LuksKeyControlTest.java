package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlProvider;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Key slots edited on an open volume through its control files, while data stays readable. */
class LuksKeyControlTest {
    @TempDir
    Path dir;

    private byte[] readWith(String id, String pass) throws IOException {
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            LuksTesting.addSecret(g, id, pass);
            g.open(TestGraphs.opts("driver", "file", "node-name", "f0", "filename", "k.img"));
            g.open(TestGraphs.opts("driver", "luks", "node-name", "l0", "file", "f0", "key-secret", id));
            BlockBackend disk = g.addBackend("d", "l0", false);
            ByteBuffer b = ByteBuffer.allocate(4096);
            disk.read(0, b);
            return b.array();
        } finally {
            g.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"luks1", "luks2"})
    void addAndRemoveKeysWhileOpen(String format) throws Exception {
        LuksTesting.create(dir.resolve("k.img"), 1 << 20, "format", format);
        byte[] data = TestGraphs.randomBytes(5, 4096);
        Files.writeString(dir.resolve("third.txt"), "third one");
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "k.img"), true);
            disk.write(0, ByteBuffer.wrap(data), 0);
            LuksTesting.addSecret(g, "s1", "second one");
            Map<String, ControlFile> files = ((ControlProvider) g.node("l0")).controlFiles();
            assertEquals("0 pbkdf2", files.get("keyslots").read().substring(0, 8));
            files.get("add-key").write("secret=s1 iter-time=1");
            files.get("add-key").write("file=" + dir.resolve("third.txt") + " slot=5 iter-time=1");
            String slots = files.get("keyslots").read();
            assertTrue(slots.contains("\n1 pbkdf2") && slots.contains("\n5 pbkdf2"), slots);
            BlockIOException inUse = assertThrows(BlockIOException.class,
                    () -> files.get("add-key").write("secret=s1 slot=5"));
            assertEquals(Errno.EINVAL, inUse.errno());
            assertTrue(inUse.getMessage().contains("key slot 5 is in use"), inUse.getMessage());
            files.get("remove-key").write("secret=s0");
            files.get("remove-key").write("slot=5");
            assertThrows(BlockIOException.class, () -> files.get("remove-key").write("slot=1"), "the last slot stays");
            assertThrows(BlockIOException.class, () -> files.get("add-key").write("secret=nope"));
            assertThrows(BlockIOException.class, () -> files.get("add-key").write("password=x"));
        } finally {
            g.close();
        }
        assertArrayEquals(data, readWith("s1", "second one"));
        ConfigException e = assertThrows(ConfigException.class, () -> readWith("s0", LuksTesting.PASS));
        assertTrue(e.getMessage().contains("no key slot opens with secret 's0'"), e.getMessage());
        assertThrows(ConfigException.class, () -> readWith("s3", "third one"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"luks1"})
    void readOnlyNodesRefuseKeyEdits(String format) throws Exception {
        LuksTesting.create(dir.resolve("k.img"), 1 << 20, "format", format);
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            LuksTesting.openLuks(g, "k.img", "read-only", true);
            BlockIOException e = assertThrows(BlockIOException.class,
                    () -> ((ControlProvider) g.node("l0")).controlFiles().get("add-key").write("secret=s0"));
            assertEquals(Errno.EROFS, e.errno());
        } finally {
            g.close();
        }
    }

    /**
     * Two editors of one image (two mounts, the second with locking=off, each with its own control
     * files) must not act on stale headers: each removes a different slot, and the second must be
     * refused as the last one instead of locking everyone out.
     */
    @ParameterizedTest
    @ValueSource(strings = {"luks1", "luks2"})
    void editsSeeTheHeaderOnDiskNotAStaleCopy(String format) throws Exception {
        LuksTesting.create(dir.resolve("k.img"), 1 << 20, "format", format);
        BlockGraph g = TestGraphs.newGraph(dir);
        BlockGraph g2 = TestGraphs.newGraph(dir);
        try {
            LuksTesting.openLuks(g, "k.img");
            LuksTesting.addSecret(g, "s1", "second one");
            Map<String, ControlFile> a = ((ControlProvider) g.node("l0")).controlFiles();
            a.get("add-key").write("secret=s1 iter-time=1");
            Map<String, ControlFile> b = secondEditor(g2, "k.img");
            a.get("remove-key").write("slot=0");
            BlockIOException last = assertThrows(BlockIOException.class, () -> b.get("remove-key").write("slot=1"));
            assertTrue(last.getMessage().contains("last active"), last.getMessage());
            assertThrows(BlockIOException.class, () -> b.get("remove-key").write("slot=0"), "slot 0 is gone");
            assertEquals("1 pbkdf2", b.get("keyslots").read().substring(0, 8));
            // An add through the other node goes to a free slot as the disk has it, not as l1 first saw it.
            LuksTesting.addSecret(g2, "s2", "third one");
            b.get("add-key").write("secret=s2 iter-time=1");
            a.get("add-key").write("secret=s0 iter-time=1");
            String slots = a.get("keyslots").read();
            assertEquals(3, slots.lines().count(), slots);
        } finally {
            g2.close();
            g.close();
        }
        assertEquals(4096, readWith("s1", "second one").length);
        assertEquals(4096, readWith("s2", "third one").length);
        assertEquals(4096, readWith("s0", LuksTesting.PASS).length);
    }

    /** A passphrase written to a control file by mistake never comes back in the error. */
    @ParameterizedTest
    @ValueSource(strings = {"luks1"})
    void mistypedPassphrasesAreNeverEchoed(String format) throws Exception {
        LuksTesting.create(dir.resolve("k.img"), 1 << 20, "format", format);
        String pass = "Tr0ub4dor&3-typed-by-mistake";
        BlockGraph g = TestGraphs.newGraph(dir);
        BlockGraph g2 = TestGraphs.newGraph(dir);
        try {
            LuksTesting.openLuks(g, "k.img");
            Map<String, ControlFile> files = ((ControlProvider) g.node("l0")).controlFiles();
            for (String[] w : new String[][] {{"add-key", pass}, {"add-key", "secret=" + pass},
                {"add-key", "secret=s0 " + pass + "=x"}, {"add-key", "secret=s0 slot=" + pass},
                {"remove-key", pass}, {"remove-key", "secret=" + pass}, {"remove-key", "slot=" + pass}}) {
                BlockIOException e = assertThrows(BlockIOException.class, () -> files.get(w[0]).write(w[1]));
                assertEquals(Errno.EINVAL, e.errno());
                assertTrue(!e.getMessage().contains(pass) && !e.getMessage().contains(pass.substring(0, 8)),
                        w[0] + " echoed the passphrase: " + e.getMessage().replace(pass, "<pass>"));
            }
        } finally {
            g2.close();
            g.close();
        }
    }

    /** Key files must be regular files up to 8 MiB: FIFOs, devices and huge files are refused at once. */
    @ParameterizedTest
    @ValueSource(strings = {"luks2"})
    void keyFilesMustBeSmallRegularFiles(String format) throws Exception {
        LuksTesting.create(dir.resolve("k.img"), 1 << 20, "format", format);
        Path fifo = dir.resolve("fifo");
        Process mk = new ProcessBuilder("mkfifo", fifo.toString()).start();
        assertEquals(0, mk.waitFor());
        Path big = dir.resolve("big.key");
        try (var ch = java.nio.channels.FileChannel.open(big, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {1}), (8 << 20));
        }
        BlockGraph g = TestGraphs.newGraph(dir);
        BlockGraph g2 = TestGraphs.newGraph(dir);
        try {
            LuksTesting.openLuks(g, "k.img");
            Map<String, ControlFile> files = ((ControlProvider) g.node("l0")).controlFiles();
            for (String[] c : new String[][] {{"/dev/zero", "not a regular file"}, {fifo.toString(), "not a regular file"},
                {dir.toString(), "not a regular file"}, {big.toString(), "larger than 8 MiB"}}) {
                for (String file : new String[] {"add-key", "remove-key"}) {
                    // On a pool (daemon) thread: a FIFO opened by mistake would block it for good.
                    var result = java.util.concurrent.CompletableFuture.supplyAsync(() -> assertThrows(
                            BlockIOException.class, () -> files.get(file).write("file=" + c[0])));
                    BlockIOException e = result.get(10, java.util.concurrent.TimeUnit.SECONDS);
                    assertTrue(e.getMessage().contains(c[1]), e.getMessage());
                }
            }
            assertEquals(1, files.get("keyslots").read().lines().count());
        } finally {
            g2.close();
            g.close();
        }
    }

    /**
     * Two luks nodes over one file in one graph would be two writers of one header: refused at
     * open, naming both. So is a read-only second one, which would read a header the first may
     * change under it (QEMU refuses both too).
     */
    @ParameterizedTest
    @ValueSource(strings = {"luks1", "luks2"})
    void aSecondWriterOfTheHeaderIsRefused(String format) throws Exception {
        LuksTesting.create(dir.resolve("k.img"), 1 << 20, "format", format);
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            LuksTesting.openLuks(g, "k.img");
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(TestGraphs.opts("driver", "luks",
                    "node-name", "l1", "file", "f0", "key-secret", "s0")));
            assertEquals("blockdev 'l1' (luks): 'file' f0 is already written by 'l0' (luks), which does not share "
                    + "write", e.getMessage());
            assertNull(g.node("l1"), "nothing of it stays open");
            e = assertThrows(ConfigException.class, () -> g.open(TestGraphs.opts("driver", "luks",
                    "node-name", "l1", "file", "f0", "key-secret", "s0", "read-only", true)));
            assertEquals("blockdev 'l1' (luks): 'file' f0 is written by 'l0' (luks), and this use does not share "
                    + "write", e.getMessage());
            assertEquals(Errno.EBUSY, e.errno());
        } finally {
            g.close();
        }
    }

    /** A second mount's luks node over the same image, with its own file node and locking off. */
    private static Map<String, ControlFile> secondEditor(BlockGraph g2, String file) throws Exception {
        LuksTesting.addSecret(g2, "s0", LuksTesting.PASS);
        g2.open(TestGraphs.opts("driver", "file", "node-name", "f0", "filename", file, "locking", "off"));
        g2.open(TestGraphs.opts("driver", "luks", "node-name", "l1", "file", "f0", "key-secret", "s0"));
        return ((ControlProvider) g2.node("l1")).controlFiles();
    }
}
