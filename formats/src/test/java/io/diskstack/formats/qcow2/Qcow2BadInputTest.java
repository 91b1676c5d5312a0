package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Broken images and backing chains: one-line errors that name the file and the problem. */
class Qcow2BadInputTest {
    @TempDir
    Path dir;

    private String openError(Path img) throws IOException {
        byte[] before = Files.readAllBytes(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(Images.node("q0", img)));
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            assertTrue(e.getMessage().contains("'" + img + "'") || e.getMessage().contains(img.getFileName().toString()),
                    "names the file: " + e.getMessage());
            assertArrayEquals(before, Files.readAllBytes(img), "a failed open leaves the file unchanged");
            return e.getMessage();
        }
    }

    private static void patch(Path img, long at, ByteBuffer value) throws IOException {
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(value, at);
        }
    }

    private Path image() throws IOException {
        Path img = dir.resolve("a.qcow2");
        Images.create(img, 8 << 20);
        return img;
    }

    @Test
    void truncatedAndForeignFiles() throws IOException {
        Path img = image();
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.truncate(50);
        }
        assertTrue(openError(img).contains("too short"));
        Files.write(img, new byte[4096]);
        assertTrue(openError(img).contains("not a qcow2 image"));
    }

    @Test
    void absurdFields() throws IOException {
        Path img = image();
        patch(img, 36, ByteBuffer.allocate(4).putInt(0, 0x7fffffff));
        assertTrue(openError(img).contains("L1 table of 2147483647 entries"), openError(img));
        img = image2();
        patch(img, 40, ByteBuffer.allocate(8).putLong(0, 1L << 40));
        assertTrue(openError(img).contains("past the end of the file"), openError(img));
        img = image2();
        patch(img, 48, ByteBuffer.allocate(8).putLong(0, 0));
        assertTrue(openError(img).contains("overlaps the header"), openError(img));
        img = image2();
        patch(img, 56, ByteBuffer.allocate(4).putInt(0, 1 << 30));
        assertTrue(openError(img).contains("refcount table of 1073741824 clusters"), openError(img));
        img = image2();
        patch(img, 24, ByteBuffer.allocate(8).putLong(0, Long.MAX_VALUE));
        assertTrue(openError(img).contains("virtual size"), openError(img));
        img = image2();
        patch(img, 20, ByteBuffer.allocate(4).putInt(0, 40));
        assertTrue(openError(img).contains("cluster_bits 40"), openError(img));
        img = image2();
        patch(img, 72, ByteBuffer.allocate(8).putLong(0, 1L << 20));
        assertTrue(openError(img).contains("unknown incompatible features bit 20"), openError(img));
        img = image2();
        patch(img, 72, ByteBuffer.allocate(8).putLong(0, 1L << 2));
        assertTrue(openError(img).contains("external data file"), openError(img));
        img = image2();
        patch(img, 60, ByteBuffer.allocate(12).putInt(0, 5).putLong(4, 1L << 35));
        assertTrue(openError(img).contains("snapshot table"), openError(img));
    }

    private Path image2() throws IOException {
        Path img = dir.resolve("b" + System.nanoTime() + ".qcow2");
        Images.create(img, 8 << 20);
        return img;
    }

    @Test
    void backingLoopsAreFound() throws IOException {
        Qemu.require();
        Path a = dir.resolve("a.qcow2");
        Path b = dir.resolve("b.qcow2");
        Qemu.img("create", "-f", "qcow2", b.toString(), "4M");
        Qemu.img("create", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a.toString());
        Qemu.img("rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", b.toString());
        String msg = openError(a);
        assertTrue(msg.contains("loops") && msg.contains("a.qcow2 → b.qcow2 → a.qcow2"), msg);
        Qemu.img("rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", a.toString());
        assertTrue(openError(a).contains("loops"));
        // a failed open leaves nothing behind: a good chain opens on the same thread afterwards
        Path base = dir.resolve("base.qcow2");
        Path top = dir.resolve("top.qcow2");
        Qemu.img("create", "-f", "qcow2", base.toString(), "4M");
        Qemu.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top.toString());
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", top));
        }
    }

    @Test
    void missingAndUnopenableBackingFiles() throws IOException {
        Qemu.require();
        Path base = dir.resolve("base.qcow2");
        Path top = dir.resolve("top.qcow2");
        Qemu.img("create", "-f", "qcow2", base.toString(), "4M");
        Qemu.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top.toString());
        Files.delete(base);
        String msg = openError(top);
        assertTrue(msg.contains("needs backing file 'base.qcow2'") && msg.contains("does not exist"), msg);
        Qemu.img("rebase", "-u", "-b", "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"x\"}}",
                "-F", "qcow2", top.toString());
        msg = openError(top);
        assertTrue(msg.contains("'json:' prefix"), msg);
        Qemu.img("rebase", "-u", "-b", "nbd://localhost:10809/disk", "-F", "raw", top.toString());
        assertTrue(openError(top).contains("'nbd:' prefix"));
        // "backing": null in the config opens the image on its own
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            Map<String, Object> o = Images.node("q0", top);
            o.put("backing", "");
            g.open(o);
        }
    }

    @Test
    void refcountOverflowIsRefusedCleanly() throws IOException {
        Qemu.require();
        Path img = dir.resolve("r.qcow2");
        Images.create(img, 4 << 20, "refcount_bits", "1");
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 1 << 20)), 0);
            BlockIOException e = assertThrows(BlockIOException.class,
                    () -> ((InternalSnapshots) g.node("q0")).createSnapshot("s"));
            assertTrue(e.getMessage().contains("refcount overflow") && e.getMessage().contains(img.toString()),
                    e.getMessage());
            d.write(4096, ByteBuffer.wrap(TestGraphs.randomBytes(2, 4096)), 0);
        }
        Qemu.checkClean(img);
    }

    @Test
    void corruptTablesGiveIoErrorsNotCrashes() throws IOException {
        Path img = image();
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 8192)), 0);
        }
        // point L1 entry 0 at an unaligned offset
        ByteBuffer h = ByteBuffer.wrap(Files.readAllBytes(img));
        long l1 = h.getLong(40);
        patch(img, l1, ByteBuffer.allocate(8).putLong(0, (1L << 63) | 0x10200));
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            BlockIOException e = assertThrows(BlockIOException.class, () -> d.read(0, ByteBuffer.allocate(512)));
            assertTrue(e.getMessage().contains("corrupt image") && e.getMessage().contains("L1 entry 0"), e.getMessage());
        }
    }

    /** A qemu-img image with one snapshot; returns the file offset of its snapshot table entry. */
    private long snapshotted(Path img) throws IOException {
        Files.deleteIfExists(img);
        Qemu.img("create", "-f", "qcow2", img.toString(), "8M");
        Qemu.io(img, "write -P 0x11 0 64k");
        Qemu.img("snapshot", "-c", "s1", img.toString());
        ByteBuffer b = ByteBuffer.allocate(8);
        try (FileChannel ch = FileChannel.open(img)) {
            ch.read(b, 64);
        }
        return b.getLong(0);
    }

    @Test
    void snapshotTableFieldsThatWrapAround() throws IOException {
        Qemu.require();
        Path img = dir.resolve("s.qcow2");
        // an L1 table 2^63 - 64 KiB into the file: offset + 1 MiB wraps negative, below the file size
        long entry = snapshotted(img);
        patch(img, entry, ByteBuffer.allocate(12).putLong(0, 0x7fff_ffff_ffff_0000L).putInt(8, 0x20000));
        String e = openError(img);
        assertTrue(e.contains("snapshot 's1' with an L1 table of 131072 entries at offset 9223372036854710272")
                && e.contains("does not fit the file"), e);
        // the same with the top bit set
        entry = snapshotted(img);
        patch(img, entry, ByteBuffer.allocate(8).putLong(0, 0xffff_ffff_ffff_0000L));
        assertTrue(openError(img).contains("offset 18446744073709486080"), openError(img));
        // a VM state size (extra data bytes 0-7) past 2^63
        entry = snapshotted(img);
        patch(img, entry + 40, ByteBuffer.allocate(8).putLong(0, -2));
        assertTrue(openError(img).contains("VM state of 18446744073709551614 bytes"), openError(img));
    }

    @Test
    void snapshotNameLengthsAreUnsigned() throws IOException {
        Qemu.require();
        Path img = dir.resolve("n.qcow2");
        long entry = snapshotted(img);
        // one snapshot, renamed to 40000 bytes: its length (bytes 14-15) is negative as a signed short
        ByteBuffer t = ByteBuffer.allocate(40 + 16 + 1);
        try (FileChannel ch = FileChannel.open(img)) {
            ch.read(t, entry);
        }
        int extra = t.getInt(36);
        int idLen = Short.toUnsignedInt(t.getShort(12));
        byte[] name = new byte[40000];
        java.util.Arrays.fill(name, (byte) 'n');
        long tableAt = (Files.size(img) + 65535) / 65536 * 65536;
        ByteBuffer table = ByteBuffer.allocate(40 + extra + idLen + name.length + 8);
        try (FileChannel ch = FileChannel.open(img)) {
            ch.read(table.limit(40 + extra + idLen), entry);
        }
        table.limit(table.capacity());
        table.putShort(14, (short) name.length).put(40 + extra + idLen, name);
        patch(img, tableAt, table.clear());
        patch(img, 64, ByteBuffer.allocate(8).putLong(0, tableAt));
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(TestGraphs.opts("driver", "qcow2", "node-name", "q", "read-only", true,
                    "file", Map.of("driver", "file", "filename", img.toString())));
            InternalSnapshots.Snapshot s = ((InternalSnapshots) g.node("q")).listSnapshots().get(0);
            assertTrue(s.name().length() == 40000 && s.id().equals("1"), s.toString().substring(0, 80));
        }
    }

    @Test
    void namesFromTheImageAreEscapedInMessages() throws IOException {
        Qemu.require();
        Path top = dir.resolve("names.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=4096", top.toString(), "4M");
        Qemu.img("rebase", "-u", "-b", "evil\nname\u001b[31m\\x", "-F", "qcow2", top.toString());
        String msg = openError(top);
        assertTrue(msg.contains("needs backing file 'evil\\x0aname\\x1b[31m\\\\x'"), msg);

        // an unknown incompatible feature whose name in the feature table holds a newline
        Path img = dir.resolve("feature.qcow2");
        Qemu.img("create", "-f", "qcow2", img.toString(), "4M");
        long table = -1;
        try (FileChannel ch = FileChannel.open(img)) {
            ByteBuffer h = ByteBuffer.allocate(4096);
            ch.read(h, 0);
            for (int pos = h.getInt(100); pos + 8 <= 4096 && h.getInt(pos) != 0;
                 pos += 8 + ((h.getInt(pos + 4) + 7) & ~7)) {
                if (h.getInt(pos) == Qcow2Header.EXT_FEATURE_TABLE) {
                    table = pos + 8;
                }
            }
        }
        assertTrue(table > 0, "qemu-img writes a feature name table");
        byte[] entry = new byte[48];
        entry[0] = 0; // incompatible
        entry[1] = 20;
        byte[] name = "fancy\nERROR: fake".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        System.arraycopy(name, 0, entry, 2, name.length);
        patch(img, table, ByteBuffer.wrap(entry));
        patch(img, 72, ByteBuffer.allocate(8).putLong(0, 1L << 20));
        msg = openError(img);
        assertTrue(msg.contains("unknown incompatible features 'fancy\\x0aERROR: fake' (bit 20)"), msg);
    }

    /** QEMU bounds header_length (104 to the cluster size) and parses extensions from there: so do we. */
    @Test
    void headerLengthIsAcceptedExactlyWhereQemuImgInfoAcceptsIt() throws IOException {
        Qemu.require();
        Path qemuMade = dir.resolve("q.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=4096", qemuMade.toString(), "4M");
        Path ours = dir.resolve("o.qcow2");
        Images.create(ours, 4 << 20, "cluster_size", "4096");
        int[] lengths = {0, 72, 100, 103, 104, 105, 107, 108, 109, 111, 112, 113, 116, 119, 120, 128, 200, 4080,
            4088, 4089, 4092, 4095, 4096, 4097, 8192, -1};
        int opened = 0;
        int refused = 0;
        for (Path base : new Path[] {qemuMade, ours}) {
            byte[] good = Files.readAllBytes(base);
            for (int length : lengths) {
                Path img = dir.resolve("hl.qcow2");
                Files.write(img, good);
                patch(img, 100, ByteBuffer.allocate(4).putInt(0, length));
                boolean qemu = Qemu.exec("qemu-img", "info", img.toString()).exit() == 0;
                boolean mine;
                try (BlockGraph g = TestGraphs.newGraph(dir)) {
                    Map<String, Object> o = Images.node("q0", img);
                    o.put("read-only", true);
                    g.open(o);
                    mine = true;
                } catch (ConfigException e) {
                    assertFalse(e.getMessage().contains("\n"), e.getMessage());
                    mine = false;
                }
                assertEquals(qemu, mine, base.getFileName() + " with header_length " + length + ": qemu-img info "
                        + (qemu ? "opens" : "refuses") + " it, diskstack " + (mine ? "opens" : "refuses") + " it");
                if (mine) {
                    opened++;
                } else {
                    refused++;
                }
            }
        }
        assertTrue(opened > 4 && refused > 4, opened + " opened, " + refused + " refused");
    }
}
