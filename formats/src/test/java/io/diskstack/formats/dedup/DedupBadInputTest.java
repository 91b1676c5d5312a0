package io.diskstack.formats.dedup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.Errno;
import io.diskstack.core.ImageCheckContext;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Children that do not make a device, a damaged journal or block map, bad options: one line that
 * names the node and the child or key, and neither child is changed.
 */
class DedupBadInputTest {
    private static final long JOURNAL = 4 * 4096;

    @TempDir
    Path dir;

    private Path device(String name) throws IOException {
        return DedupTesting.create(Files.createDirectories(dir.resolve(name)), 4 << 20, 4096);
    }

    private static ConfigException openFails(Path metaDir, Path dataDir) {
        return openFails(metaDir.resolve("meta.img"), dataDir.resolve("data.img"), false);
    }

    private static ConfigException openFails(Path meta, Path data, boolean unused) {
        try (BlockGraph g = TestGraphs.newGraph(meta.getParent())) {
            return assertThrows(ConfigException.class, () -> g.open(TestGraphs.opts("driver", "dedup", "node-name", "dd0",
                    "metadata", Map.of("driver", "file", "filename", meta.toString()),
                    "data", Map.of("driver", "file", "filename", data.toString()))));
        }
    }

    private static Map<String, String> digests(Path... dirs) throws Exception {
        Map<String, String> out = new HashMap<>();
        for (Path d : dirs) {
            for (String f : new String[] {"meta.img", "data.img"}) {
                byte[] h = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(d.resolve(f)));
                out.put(d.resolve(f).toString(), java.util.HexFormat.of().formatHex(h));
            }
        }
        return out;
    }

    private static void patch(Path file, long offset, byte[] bytes) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(offset);
            f.write(bytes);
        }
    }

    private static long u32(Path file, long offset) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "r")) {
            f.seek(offset);
            return f.readInt() & 0xffff_ffffL;
        }
    }

    @Test
    void aMetadataChildTooSmallForTheDeclaredSize() throws Exception {
        Path a = device("a");
        try (RandomAccessFile f = new RandomAccessFile(a.resolve("meta.img").toFile(), "rw")) {
            f.setLength(f.length() - 4096);
        }
        Map<String, String> before = digests(a);
        ConfigException e = openFails(a, a);
        assertTrue(e.getMessage().matches("blockdev 'dd0' \\(dedup\\): metadata child '.*/a/meta.img' is too small for this "
                + "device: a 4 MiB disk over 2048 data blocks needs [0-9]+ bytes of metadata, it has [0-9]+"), e.getMessage());
        assertEquals(before, digests(a));
    }

    @Test
    void aDataChildOfAnotherDeviceOrVersion() throws Exception {
        Path a = device("a");
        Path b = device("b");
        Map<String, String> before = digests(a, b);
        ConfigException e = openFails(a, b);
        assertTrue(e.getMessage().matches("blockdev 'dd0' \\(dedup\\): data child '.*/b/data.img' belongs to another dedup "
                + "device \\(uuid [0-9a-f-]{36}; the metadata's is [0-9a-f-]{36}\\)"), e.getMessage());
        assertEquals(before, digests(a, b), "nothing changed");

        byte[] header = Files.readAllBytes(a.resolve("data.img"));
        header = java.util.Arrays.copyOf(header, 4096);
        Bytes.putU32(header, 8, 2);
        Bytes.putU32(header, 4092, Bytes.crc32c(header, 0, 4092) & 0xffff_ffffL);
        patch(a.resolve("data.img"), 0, header);
        e = openFails(a, a);
        assertTrue(e.getMessage().endsWith("data child '" + a.resolve("data.img") + "' has dedup format version 2; "
                + "this diskstack reads version 1"), e.getMessage());
    }

    @Test
    void swappedChildrenAreNamedAsSuch() throws Exception {
        Path a = device("a");
        ConfigException e = openFails(a.resolve("data.img"), a.resolve("meta.img"), false);
        assertEquals("blockdev 'dd0' (dedup): metadata child '" + a.resolve("data.img") + "' is a dedup data device, "
                + "not a metadata device (are metadata and data swapped?)", e.getMessage());
        e = openFails(a.resolve("meta.img"), device("b").resolve("meta.img"), false);
        assertTrue(e.getMessage().contains("is a dedup metadata device, not a data device"), e.getMessage());
    }

    /** Two committed transactions in the journal of a copy taken while the device was open. */
    private Path crashedWithTwoTransactions() throws IOException {
        Path live = device("live");
        Path crashed = Files.createDirectories(dir.resolve("crashed"));
        try (BlockGraph g = TestGraphs.newGraph(live)) {
            BlockBackend d = DedupTesting.open(g, live);
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 65536)), 0);
            d.flush();
            d.write(65536, ByteBuffer.wrap(TestGraphs.randomBytes(2, 65536)), 0);
            d.flush();
            Files.copy(live.resolve("meta.img"), crashed.resolve("meta.img"));
            Files.copy(live.resolve("data.img"), crashed.resolve("data.img"));
        }
        return crashed;
    }

    @Test
    void aTornJournalRecordFollowedByAnotherIsRefusedAndChangesNothing() throws Exception {
        Path crashed = crashedWithTwoTransactions();
        Path meta = crashed.resolve("meta.img");
        assertEquals(0x4444_5550L, u32(meta, JOURNAL), "a transaction at journal page 0 (DDUPJRNL)");
        patch(meta, JOURNAL + 100, new byte[] {0x5a, 0x5a});
        Map<String, String> before = digests(crashed);
        ConfigException e = openFails(crashed, crashed);
        assertTrue(e.getMessage().matches("blockdev 'dd0' \\(dedup\\): metadata child '.*/crashed/meta.img' has a damaged "
                + "journal: transaction [0-9]+ at byte 16384 is torn or corrupt \\(its checksum does not match, and "
                + "transaction [0-9]+ follows it\\)"), e.getMessage());
        assertEquals(before, digests(crashed), "nothing overwritten");
        assertThrows(ConfigException.class, () -> check(crashed, ImageCheckContext.Repair.NONE));
    }

    @Test
    void aTornLastRecordIsACommitTheCrashInterrupted() throws Exception {
        Path crashed = crashedWithTwoTransactions();
        Path meta = crashed.resolve("meta.img");
        long second = JOURNAL + u32(meta, JOURNAL + 32);
        patch(meta, second + 100, new byte[] {0x5a, 0x5a});
        try (BlockGraph g = TestGraphs.newGraph(crashed)) {
            BlockBackend d = DedupTesting.open(g, crashed);
            ByteBuffer first = ByteBuffer.allocate(65536);
            d.read(0, first);
            assertArrayEquals(TestGraphs.randomBytes(1, 65536), first.array(), "the first commit's data");
            ByteBuffer lost = ByteBuffer.allocate(65536);
            d.read(65536, lost);
            assertArrayEquals(new byte[65536], lost.array(), "the torn commit is not replayed");
        }
        assertTrue(check(crashed, ImageCheckContext.Repair.NONE).isClean());
    }

    private static ImageCheckContext.Report check(Path d, ImageCheckContext.Repair repair) throws IOException {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("metadata", d.resolve("meta.img").toString());
        o.put("data", d.resolve("data.img").toString());
        try (ObjectRegistry objects = ObjectRegistry.load()) {
            return new DedupDriver().check(new ImageCheckContext(null, new NodeOptions("check", o), repair, objects,
                    DriverRegistry.load()));
        }
    }

    @Test
    void aBlockMapEntryOutsideTheDataChildFailsTheRequestAndStopsChanges() throws Exception {
        Path a = device("a");
        try (BlockGraph g = TestGraphs.newGraph(a)) {
            DedupTesting.open(g, a).write(0, ByteBuffer.wrap(TestGraphs.randomBytes(3, 8192)), 0);
        }
        Superblock sb;
        try (BlockGraph g = TestGraphs.newGraph(a)) {
            g.open(DedupTesting.options(a, "dd0", "read-only", true));
            sb = DedupTesting.node(g).sb;
        }
        byte[] entry = new byte[5];
        Bytes.putU40(entry, 0, 999_999);
        patch(a.resolve("meta.img"), sb.geometry.mapStart * 4096 + 5, entry);
        ImageCheckContext.Report r = check(a, ImageCheckContext.Repair.NONE);
        assertEquals(1, r.corruptions(), r.problems().toString());
        assertTrue(r.problems().get(0).matches("ERROR logical block 1 maps to physical block 999999, outside data child "
                + "'.*/a/data.img' \\(2048 blocks\\)"), r.problems().toString());
        Map<String, String> before = digests(a);
        try (BlockGraph g = TestGraphs.newGraph(a)) {
            BlockBackend d = DedupTesting.open(g, a);
            ByteBuffer ok = ByteBuffer.allocate(4096);
            d.read(0, ok);
            assertArrayEquals(java.util.Arrays.copyOf(TestGraphs.randomBytes(3, 8192), 4096), ok.array());
            BlockIOException e = assertThrows(BlockIOException.class, () -> d.read(4096, ByteBuffer.allocate(4096)));
            assertEquals(Errno.EIO, e.errno());
            assertTrue(e.getMessage().matches("dedup 'dd0': the block map entry of logical block 1 points at physical "
                    + "block 999999, outside data child '.*/a/data.img' \\(2048 blocks\\)"), e.getMessage());
            e = assertThrows(BlockIOException.class, () -> d.write(0, ByteBuffer.wrap(new byte[4096]), 0));
            assertTrue(e.getMessage().contains("is damaged"), e.getMessage());
        }
        assertEquals(before, digests(a), "nothing overwritten");
    }

    @Test
    void badOptionsNameTheNodeAndKey() throws Exception {
        Path a = device("a");
        try (BlockGraph g = TestGraphs.newGraph(a)) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(DedupTesting.options(a, "dd0",
                    "cache-size", "1M", "index-cache-size", "2M")));
            assertEquals("blockdev 'dd0' (dedup): 'cache-size' value 1048576 is less than index-cache-size", e.getMessage());
            e = assertThrows(ConfigException.class, () -> g.open(DedupTesting.options(a, "dd1", "block-size", "8K")));
            assertTrue(e.getMessage().contains("'block-size'"), e.getMessage());
        }
        for (String[] bad : new String[][] {{"block-size", "2K", "'block-size' value 2048 is not a power of two from 4K to 64K"},
            {"block-size", "128K", "'block-size' value 131072 is not a power of two from 4K to 64K"},
            {"block-size", "12K", "'block-size' value 12288 is not a power of two from 4K to 64K"},
            {"hash", "md5", "'hash' value 'md5' is not one of sha256"}}) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("metadata", dir.resolve("m-" + bad[1]).toString());
            o.put("data", dir.resolve("d-" + bad[1]).toString());
            o.put(bad[0], bad[1]);
            try (ObjectRegistry objects = ObjectRegistry.load()) {
                ConfigException e = assertThrows(ConfigException.class, () -> new DedupDriver().create(
                        new ImageCreateContext(null, 1 << 20, new NodeOptions("create (dedup)", o), objects,
                                DriverRegistry.load())));
                assertEquals("create (dedup): " + bad[2], e.getMessage());
            }
            assertTrue(!Files.exists(dir.resolve("m-" + bad[1])) && !Files.exists(dir.resolve("d-" + bad[1])),
                    "nothing created");
        }
    }
}
