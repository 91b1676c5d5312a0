package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Our check agrees with qemu-img check on clean, leaking and corrupt images, and repairs leaks. */
class Qcow2CheckTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    private Path writtenImage(String... opts) throws IOException {
        Path img = dir.resolve("k.qcow2");
        Images.create(img, 8 << 20, opts);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 3 << 20)), 0);
            ((InternalSnapshots) g.node("q0")).createSnapshot("s");
            d.write(1 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(2, 1 << 20)), 0);
        }
        return img;
    }

    /** Sets the stored refcount of the cluster at {@code offset} (16-bit refcounts, first block). */
    private static void setRefcount(Path img, long offset, int value) throws IOException {
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(104);
            ch.read(h, 0);
            int cs = 1 << h.getInt(20);
            ByteBuffer t = ByteBuffer.allocate(8);
            ch.read(t, h.getLong(48));
            long block = t.getLong(0);
            ch.write(ByteBuffer.allocate(2).putShort(0, (short) value), block + offset / cs * 2);
        }
    }

    @Test
    void cleanImagesAreClean() throws IOException {
        Path img = writtenImage();
        Qcow2Check.Report r = Qcow2Check.check(img, false);
        assertTrue(r.isClean(), r.toString());
        Qemu.checkClean(img);
    }

    @Test
    void leaksAreFoundAndRepaired() throws IOException {
        Path img = writtenImage("cluster_size", "4096");
        long size = java.nio.file.Files.size(img);
        // qemu-img check looks only at clusters inside the file: grow it, then leak two clusters there
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(1), size + 4096 * 8);
        }
        setRefcount(img, size + 4096 * 3, 1);
        setRefcount(img, size + 4096 * 5, 1);
        assertTrue(Qemu.check(img).contains("2 leaked clusters"), Qemu.check(img));
        Qcow2Check.Report r = Qcow2Check.check(img, false);
        assertEquals(0, r.corruptions(), r.toString());
        assertEquals(2, r.leaks(), r.toString());
        r = Qcow2Check.check(img, true);
        assertEquals(2, r.leaksFixed(), r.toString());
        assertTrue(r.isClean());
        Qemu.checkClean(img);
        assertTrue(Qcow2Check.check(img, false).isClean());
    }

    @Test
    void refcountsTooLowAreCorruption() throws IOException {
        Path img = writtenImage("cluster_size", "4096");
        ByteBuffer h = ByteBuffer.wrap(java.nio.file.Files.readAllBytes(img));
        long l1 = h.getLong(40);
        // L1 entry 1 maps 2-4 MiB, untouched since the snapshot: its L2 table has refcount 2
        long l2 = h.getLong((int) l1 + 8) & Layout.OFFSET_MASK;
        setRefcount(img, l2, 1);
        Qcow2Check.Report r = Qcow2Check.check(img, true);
        assertTrue(r.corruptions() > 0, r.toString());
        assertTrue(r.problems().get(0).startsWith("ERROR"), r.problems().toString());
        assertTrue(Qemu.check(img).contains("ERROR"), Qemu.check(img));
    }

    /** The file offset of the bitmaps extension's data (v3 header). */
    private static long bitmapsExtension(FileChannel ch) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8);
        ch.read(b, 100);
        long pos = Integer.toUnsignedLong(b.getInt(0));
        while (true) {
            ch.read(b.clear(), pos);
            int type = b.getInt(0);
            int len = b.getInt(4);
            if (type == 0) {
                throw new AssertionError("no bitmaps extension");
            }
            if (type == Qcow2Header.EXT_BITMAPS) {
                return pos + 8;
            }
            pos += 8 + ((len + 7) & ~7);
        }
    }

    private interface Patch {
        void apply(FileChannel ch, long ext, long dir) throws IOException;
    }

    private void assertBitmapDamageReported(Patch patch, String expected) throws IOException {
        Path img = dir.resolve("b.qcow2");
        java.nio.file.Files.deleteIfExists(img);
        Qemu.img("create", "-f", "qcow2", img.toString(), "16M");
        Qemu.img("bitmap", "--add", img.toString(), "b0");
        Qemu.io(img, "write -P 0x11 0 128k");
        assertTrue(Qcow2Check.check(img, false).isClean());
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long ext = bitmapsExtension(ch);
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, ext + 16);
            patch.apply(ch, ext, b.getLong(0));
        }
        Qcow2Check.Report r = Qcow2Check.check(img, false);
        assertTrue(r.corruptions() > 0, r.toString());
        assertTrue(r.problems().stream().anyMatch(p -> p.contains(expected)), r.problems().toString());
    }

    private static void put(FileChannel ch, long at, ByteBuffer value) throws IOException {
        ch.write(value.clear(), at);
    }

    @Test
    void damagedBitmapExtensionsAreReportedNotThrown() throws IOException {
        // extra data of almost 2 GiB: an int position would wrap negative
        assertBitmapDamageReported((ch, ext, dir) -> {
            put(ch, ext, ByteBuffer.allocate(4).putInt(0, 3));
            put(ch, dir + 20, ByteBuffer.allocate(4).putInt(0, 0x7fff_fff0));
        }, "runs past the directory's end");
        // a directory offset with the top bit set: offset + size wraps below the file size
        assertBitmapDamageReported((ch, ext, dir) ->
                put(ch, ext + 16, ByteBuffer.allocate(8).putLong(0, 0xffff_ffff_ffff_0000L)),
                "does not fit the file");
        // a bitmap table offset that wraps the same way
        assertBitmapDamageReported((ch, ext, dir) -> {
            put(ch, dir, ByteBuffer.allocate(8).putLong(0, 0xffff_ffff_ffff_0000L));
            put(ch, dir + 8, ByteBuffer.allocate(4).putInt(0, 0x1000_0000));
        }, "does not fit the file");
        // 4 billion bitmaps: QEMU refuses to open the image, so its check fails (exit 1), and so does ours
        Path img = dir.resolve("b.qcow2");
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            put(ch, bitmapsExtension(ch), ByteBuffer.allocate(4).putInt(0, -1));
        }
        assertEquals(1, Qemu.exec("qemu-img", "check", img.toString()).exit());
        io.diskstack.core.ConfigException e = org.junit.jupiter.api.Assertions.assertThrows(
                io.diskstack.core.ConfigException.class, () -> Qcow2Check.check(img, false));
        assertTrue(e.getMessage().contains("4294967295 bitmaps") && !e.getMessage().contains("\n"), e.getMessage());
    }

    // ---- the damage qemu-img check reports: ours agrees, before and after -r all ----

    private static String family(int exit) {
        return exit == 0 ? "clean" : exit == 3 ? "leaks" : "corrupt";
    }

    private static String ours(Path img) throws IOException {
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.NONE);
        return r.checkErrors() + r.corruptions() > 0 ? "corrupt" : r.leaks() > 0 ? "leaks" : "clean";
    }

    private static String theirs(Path img) throws IOException {
        return family(Qemu.exec("qemu-img", "check", img.toString()).exit());
    }

    private interface Damage {
        void apply(ByteBuffer img);
    }

    /** A qemu-img image with data, a snapshot, and (for some options) compressed clusters. */
    private Path damaged(String options, boolean compressed, Damage damage) throws IOException {
        Path img = dir.resolve("campaign.qcow2");
        java.nio.file.Files.deleteIfExists(img);
        Qemu.img("create", "-f", "qcow2", "-o", options, img.toString(), "4M");
        Qemu.io(img, "write -P 0x11 0 256k", "write -P 0x22 1M 64k");
        if (compressed) {
            Path c = dir.resolve("c.qcow2");
            java.nio.file.Files.deleteIfExists(c);
            Qemu.img("convert", "-c", "-O", "qcow2", "-o", options, img.toString(), c.toString());
            java.nio.file.Files.move(c, img, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Qemu.img("snapshot", "-c", "s1", img.toString());
        Qemu.io(img, "write -P 0x33 2M 64k");
        ByteBuffer b = ByteBuffer.wrap(java.nio.file.Files.readAllBytes(img));
        damage.apply(b);
        java.nio.file.Files.write(img, b.array());
        return img;
    }

    /** The first allocated entry of the first L2 table. */
    private static int firstL2Entry(ByteBuffer b) {
        long l2 = b.getLong((int) b.getLong(40)) & Layout.OFFSET_MASK;
        return (int) l2;
    }

    private static void shortenSnapshotExtra(ByteBuffer b) {
        int s = (int) b.getLong(64);
        int extra = b.getInt(s + 36);
        int names = b.getShort(s + 12) + b.getShort(s + 14);
        byte[] tail = new byte[names];
        b.get(s + 40 + extra, tail);
        b.putInt(s + 36, 8);
        b.put(s + 48, tail);
    }

    @org.junit.jupiter.params.ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"L1 reserved bits", "L2 reserved bits",
        "refcount table reserved bits", "incomplete snapshot entry", "refcount block outside the image",
        "COPIED on a compressed cluster", "subcluster bitmap", "reference past the end", "refcount 0 on a used cluster"})
    void campaignDamageAgreesWithQemuImgBeforeAndAfterRepair(String kind) throws IOException {
        Path img = switch (kind) {
            case "L1 reserved bits" -> damaged("cluster_size=4096", false,
                    b -> b.putLong((int) b.getLong(40), b.getLong((int) b.getLong(40)) | 1L << 57));
            case "L2 reserved bits" -> damaged("cluster_size=4096", false,
                    b -> b.putLong(firstL2Entry(b), b.getLong(firstL2Entry(b)) | 1L << 3));
            case "refcount table reserved bits" -> damaged("cluster_size=4096", false,
                    b -> b.putLong((int) b.getLong(48), b.getLong((int) b.getLong(48)) | 1));
            case "incomplete snapshot entry" -> damaged("cluster_size=4096", false,
                    Qcow2CheckTest::shortenSnapshotExtra);
            case "refcount block outside the image" -> damaged("cluster_size=4096", false,
                    b -> b.putLong((int) b.getLong(48) + 8, (long) b.capacity() + 40 * 4096));
            case "COPIED on a compressed cluster" -> damaged("cluster_size=4096", true,
                    b -> b.putLong(firstL2Entry(b), b.getLong(firstL2Entry(b)) | Layout.COPIED));
            case "subcluster bitmap" -> damaged("cluster_size=32768,extended_l2=on", false,
                    b -> b.putLong(firstL2Entry(b) + 8, b.getLong(firstL2Entry(b) + 8) | 1L << 32 | 1));
            case "reference past the end" -> damaged("cluster_size=4096", false,
                    b -> b.putLong(firstL2Entry(b) + 8, ((long) b.capacity() + (100 << 12)) | Layout.COPIED));
            default -> damaged("cluster_size=4096", false, b -> {
                long data = b.getLong(firstL2Entry(b)) & Layout.OFFSET_MASK;
                int block = (int) b.getLong((int) b.getLong(48));
                b.putShort(block + (int) (data / 4096) * 2, (short) 0);
            });
        };
        assertEquals("corrupt", theirs(img), Qemu.check(img));
        assertEquals("corrupt", ours(img), Qcow2Check.check(img, Qcow2Check.Repair.NONE).toString());

        Path qemuRepaired = dir.resolve("qemu-repaired.qcow2");
        java.nio.file.Files.copy(img, qemuRepaired, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Qemu.exec("qemu-img", "check", "-r", "all", qemuRepaired.toString());
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.ALL);
        // reserved bits, COPIED on compressed clusters, bitmaps and references past the end are
        // reported, not repaired, by either; the refcount structure and snapshot table are repaired
        boolean repairable = List.of("refcount table reserved bits", "incomplete snapshot entry",
                "refcount block outside the image", "refcount 0 on a used cluster").contains(kind);
        assertEquals(repairable ? "clean" : "corrupt", theirs(img), "qemu-img check after our repair: " + r);
        assertEquals(theirs(img), ours(img), Qemu.check(img));
        if (theirs(qemuRepaired).equals("clean")) {
            assertArrayEquals(Qemu.raw(qemuRepaired), Qemu.raw(img), "the same data after both repairs");
        }
    }
}
