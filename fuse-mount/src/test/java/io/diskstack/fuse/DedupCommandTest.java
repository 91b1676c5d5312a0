package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.fuse.InProcessCli.Outcome;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code diskstack create -f dedup} and {@code diskstack check -f dedup [-r leaks]}, in process. */
class DedupCommandTest {
    @TempDir
    Path dir;

    private String files() {
        return "metadata=" + dir.resolve("meta.img") + ",data=" + dir.resolve("data.img");
    }

    private Outcome check(String... extra) {
        String[] args = new String[4 + extra.length];
        args[0] = "check";
        System.arraycopy(extra, 0, args, 1, extra.length);
        args[extra.length + 1] = "-f";
        args[extra.length + 2] = "dedup";
        args[extra.length + 3] = "-o" + files();
        return diskstack(args);
    }

    private void writeSome() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(TestGraphs.opts("driver", "dedup", "node-name", "dd0",
                    "metadata", Map.of("driver", "file", "filename", dir.resolve("meta.img").toString()),
                    "data", Map.of("driver", "file", "filename", dir.resolve("data.img").toString())));
            BlockBackend d = g.addBackend("d0", "dd0", true);
            byte[] block = TestGraphs.randomBytes(1, 4096);
            for (int i = 0; i < 8; i++) {
                d.write(i * 4096L, ByteBuffer.wrap(i < 4 ? block : TestGraphs.randomBytes(i, 4096)), 0);
            }
        }
    }

    /** The record (refcount, bucket) of physical block p, from the superblock's layout. */
    private long recordOffset(long p) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("meta.img").toFile(), "r")) {
            f.seek(104);
            long recordStart = f.readLong();
            return recordStart * 4096 + (p % 682) * 6 + (p / 682) * 4096;
        }
    }

    @Test
    void createMakesTwoSparseFilesThatCheckClean() throws Exception {
        Outcome r = diskstack("create", "-f", "dedup", "-o", files() + ",block-size=8K", "1G");
        assertEquals(0, r.code(), r.err());
        assertEquals((131072L + 131072 / 64 + 1) * 8192, Files.size(dir.resolve("data.img")),
                "a header block, a block per block and 1/64 more");
        long metaSize = Files.size(dir.resolve("meta.img"));
        assertTrue(metaSize > 16L << 20 && metaSize < 24L << 20, "a 16 MiB journal and the tables: " + metaSize);
        long du = Long.parseLong(Shell.sh("du -B1 -c " + dir.resolve("meta.img") + " " + dir.resolve("data.img")
                + " | tail -1 | cut -f1").ok().stdout().trim());
        assertTrue(du <= 64 << 10, "sparse: " + du + " bytes used");
        r = check();
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("No errors were found on the image."), r.out());
        assertTrue(r.out().contains("0 host blocks in use; the virtual disk has 131072 blocks."), r.out());
    }

    /** {@code diskstack info --image-opts} of a dedup device: its geometry, identity, what it stores and both files' size. */
    @Test
    void infoDescribesTheDeviceFromItsNodeOptions() throws Exception {
        assertEquals(0, diskstack("create", "-f", "dedup", "-o", files(), "64M").code());
        writeSome();
        String opts = "driver=dedup,metadata.driver=file,metadata.filename=" + dir.resolve("meta.img")
                + ",data.driver=file,data.filename=" + dir.resolve("data.img");
        Outcome r = diskstack("info", "--output=json", "--image-opts", opts);
        assertEquals(0, r.code(), r.err());
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out());
        assertEquals("dedup", json.get("format").asText(), r.out());
        assertEquals(64L << 20, json.get("virtual-size").asLong());
        assertEquals(4096, json.get("cluster-size").asInt(), r.out());
        var data = json.get("format-specific").get("data");
        assertEquals("dedup", json.get("format-specific").get("type").asText());
        assertEquals(8L * 4096, data.get("logical-bytes").asLong(), "eight blocks written");
        assertEquals(5L * 4096, data.get("physical-bytes").asLong(), "four of them the same");
        assertEquals("sha256", data.get("hash").asText());
        assertTrue(data.get("uuid").asText().matches("[0-9a-f-]{36}"), r.out());
        long du = Long.parseLong(Shell.sh("du -B1 -c " + dir.resolve("meta.img") + " " + dir.resolve("data.img")
                + " | tail -1 | cut -f1").ok().stdout().trim());
        assertEquals(du, json.get("actual-size").asLong(), "both files' storage");
        r = diskstack("info", "--image-opts", opts);
        assertTrue(r.out().contains("file format: dedup") && r.out().contains("physical bytes: 20480"), r.out());
    }

    @Test
    void createRefusesWhatItCannotDoAndLeavesNothing() {
        Path existing = dir.resolve("data.img");
        Outcome r = diskstack("create", "-f", "dedup", "-o", files(), "dir/disk.img", "1G");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("give the files as -o options and only the size"), r.err());
        r = diskstack("create", "-f", "dedup", "-o", "metadata=" + dir.resolve("meta.img"), "1G");
        assertEquals(2, r.code());
        assertEquals("diskstack: create -f dedup (dedup): 'data' is required\n", r.err());
        assertFalse(Files.exists(dir.resolve("meta.img")));
        r = diskstack("create", "-f", "dedup", "-o", files() + ",cluster_size=64K", "1G");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("cluster_size"), r.err());
        assertFalse(Files.exists(dir.resolve("meta.img")) || Files.exists(existing), "nothing left behind");
        assertEquals(0, diskstack("create", "-f", "dedup", "-o", files(), "16M").code());
        r = diskstack("create", "-f", "dedup", "-o", files(), "16M");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("already exists; remove it first (nothing was changed)"), r.err());
        r = diskstack("check", "-f", "dedup", dir.resolve("meta.img").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("give the files as -o options, not as FILE"), r.err());
    }

    @Test
    void checkFindsLeaksRepairsThemAndCallsTooLowARefcountCorruption() throws Exception {
        assertEquals(0, diskstack("create", "-f", "dedup", "-o", files(), "16M").code());
        writeSome();
        assertEquals(0, check().code());
        // block 1 holds the content written four times: refcount 4; make it 6, a leak
        long off = recordOffset(1);
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("meta.img").toFile(), "rw")) {
            f.seek(off);
            assertEquals(4, f.readUnsignedShort(), "block 1 is shared four times");
            f.seek(off);
            f.writeShort(6);
            f.seek(recordOffset(9));
            f.writeShort(1);
        }
        Outcome r = check();
        assertEquals(3, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("Leaked block 1 refcount=6 reference=4"), r.out());
        assertTrue(r.out().contains("4 leaked blocks were found on the image."), r.out());
        r = check("-r", "leaks");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("    4 leaked blocks\n    0 corruptions\n"), r.out());
        assertTrue(r.out().contains("No errors were found on the image."), r.out());
        assertEquals(0, check().code());

        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("meta.img").toFile(), "rw")) {
            f.seek(recordOffset(1));
            f.writeShort(3);
        }
        r = check();
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("ERROR block 1 refcount=3 reference=4"), r.out());
        r = check("-r", "leaks");
        assertEquals(2, r.code(), "-r leaks does not raise refcounts: " + r.out());
        r = check("-r", "all");
        assertEquals(0, r.code(), r.out() + r.err());
    }

    @Test
    void checkOfWhatIsNotADeviceCannotComplete() throws Exception {
        Files.write(dir.resolve("meta.img"), new byte[8192]);
        Files.write(dir.resolve("data.img"), new byte[8192]);
        Outcome r = check();
        assertEquals(1, r.code(), r.out() + r.err());
        assertTrue(r.err().matches("diskstack: check: blockdev 'check' \\(dedup\\): metadata child '.*meta.img' is not a "
                + "dedup metadata device \\(no DDUPMETA superblock\\)\n"), r.err());
    }
}
