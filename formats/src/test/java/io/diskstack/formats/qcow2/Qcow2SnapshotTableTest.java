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
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Snapshot tables as older QEMUs wrote them: entries with 16 bytes of extra data (QEMU 1.1–4.2)
 * or none (old version 2 images), which are shorter than the entries we write.
 */
class Qcow2SnapshotTableTest {
    private static final int CS = 4096;
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    /**
     * An 8 MiB image made by qemu-img with two snapshots ("1": 0x11 in the first MiB, "2": 0x22 in
     * its first 64 KiB) whose table is rewritten with {@code extra} bytes of extra data per entry
     * and names long enough that the table fills exactly one cluster.
     */
    private Path oldStyleImage(String compat, int extra) throws IOException {
        Path img = dir.resolve("old-" + compat + "-" + extra + ".qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=" + CS + ",compat=" + compat, img.toString(), "8M");
        Qemu.io(img, "write -P 0x11 0 1M");
        Qemu.img("snapshot", "-c", "one", img.toString());
        Qemu.io(img, "write -P 0x22 0 64k");
        Qemu.img("snapshot", "-c", "two", img.toString());
        rewriteSnapshotTable(img, extra);
        return img;
    }

    /** Re-serialises the snapshot table in place with {@code extra} bytes of extra data per entry. */
    static void rewriteSnapshotTable(Path img, int extra) throws IOException {
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = ByteBuffer.allocate(104);
            ch.read(h, 0);
            int nb = h.getInt(60);
            long off = h.getLong(64);
            ByteBuffer t = ByteBuffer.allocate(CS);
            ch.read(t, off);
            List<byte[]> fixed = new ArrayList<>();
            List<byte[]> extras = new ArrayList<>();
            List<byte[]> ids = new ArrayList<>();
            int pos = 0;
            for (int i = 0; i < nb; i++) {
                int idLen = Short.toUnsignedInt(t.getShort(pos + 12));
                int nameLen = Short.toUnsignedInt(t.getShort(pos + 14));
                int exLen = t.getInt(pos + 36);
                byte[] f = new byte[40];
                t.get(pos, f);
                byte[] x = new byte[exLen];
                t.get(pos + 40, x);
                byte[] id = new byte[idLen];
                t.get(pos + 40 + exLen, id);
                fixed.add(f);
                extras.add(Arrays.copyOf(x, extra));
                ids.add(id);
                pos += (40 + exLen + idLen + nameLen + 7) & ~7;
            }
            int per = CS / nb;
            ByteBuffer out = ByteBuffer.allocate(CS);
            for (int i = 0; i < nb; i++) {
                int nameLen = per - 40 - extra - ids.get(i).length;
                byte[] name = new byte[nameLen];
                Arrays.fill(name, (byte) ('A' + i));
                ByteBuffer f = ByteBuffer.wrap(fixed.get(i));
                f.putShort(14, (short) nameLen).putInt(36, extra);
                out.put(i * per, f.array()).put(i * per + 40, extras.get(i)).put(i * per + 40 + extra, ids.get(i))
                        .put(i * per + 40 + extra + ids.get(i).length, name);
            }
            ch.write(out, off);
        }
    }

    private static byte[] pattern(int value, int len, int size) {
        byte[] b = new byte[size];
        Arrays.fill(b, 0, len, (byte) value);
        return b;
    }

    private byte[] snapshotRaw(Path img, String id) throws IOException {
        Path out = dir.resolve("snap.raw");
        Files.deleteIfExists(out);
        Qemu.img("convert", "-l", "snapshot.id=" + id, "-O", "raw", img.toString(), out.toString());
        return Files.readAllBytes(out);
    }

    /** The content of snapshot 2 (and of the active image after it). */
    private static byte[] second() {
        byte[] two = pattern(0x11, MIB, 8 * MIB);
        Arrays.fill(two, 0, 64 << 10, (byte) 0x22);
        return two;
    }

    private void assertSnapshotsIntact(Path img) throws IOException {
        assertArrayEquals(pattern(0x11, MIB, 8 * MIB), snapshotRaw(img, "1"), "snapshot 1");
        assertArrayEquals(second(), snapshotRaw(img, "2"), "snapshot 2");
    }

    @ParameterizedTest
    @CsvSource({"1.1, 16", "0.10, 0"})
    void shortEntriesAreCheckedAndRewrittenWithoutFreeingLiveClusters(String compat, int extra) throws IOException {
        Path img = oldStyleImage(compat, extra);
        Qemu.checkClean(img);
        Qcow2Check.Report r = Qcow2Check.check(img, false);
        assertTrue(r.isClean(), r.toString());

        // create: the old table is freed, and only it
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            ((InternalSnapshots) g.node("q0")).createSnapshot("three");
            d.write(2 * MIB, ByteBuffer.wrap(TestGraphs.randomBytes(5, 2 * MIB)), 0);
        }
        Qemu.checkClean(img);
        assertTrue(Qcow2Check.check(img, false).isClean());
        assertSnapshotsIntact(img);
        assertArrayEquals(second(), snapshotRaw(img, "3"),
                "snapshot 3 is not overwritten by later guest writes");

        // delete: the same with a fresh old-style image
        Path img2 = oldStyleImage(compat, extra);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img2));
            BlockBackend d = g.addBackend("d", "q0", true);
            ((InternalSnapshots) g.node("q0")).deleteSnapshot("2");
            d.write(2 * MIB, ByteBuffer.wrap(TestGraphs.randomBytes(6, 2 * MIB)), 0);
        }
        Qemu.checkClean(img2);
        assertTrue(Qcow2Check.check(img2, false).isClean());
        assertArrayEquals(pattern(0x11, MIB, 8 * MIB), snapshotRaw(img2, "1"));
        String list = Qemu.run("qemu-img", "snapshot", "-l", img2.toString());
        assertEquals(1, list.lines().filter(l -> l.startsWith("1 ")).count(), list);
    }
}
