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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The COPIED flag (refcount exactly 1) as qemu-img check sees it: found and repaired by our check
 * after its refcount repair, as QEMU does, and kept right by snapshot revert.
 */
class Qcow2CopiedFlagTest {
    private static final int CS = 65536;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    /** 3 MiB of data, a snapshot, then 1 MiB at 1 MiB rewritten: L2 table 0 is the active's own. */
    private Path image() throws IOException {
        Path img = dir.resolve("c.qcow2");
        Images.create(img, 8 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 3 << 20)), 0);
            ((InternalSnapshots) g.node("q0")).createSnapshot("s");
            d.write(1 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(2, 1 << 20)), 0);
        }
        Qemu.checkClean(img);
        return img;
    }

    /** The file offset of the active L2 entry for a guest offset below 512 MiB. */
    private static long l2EntryAt(FileChannel ch, long guest) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8);
        ch.read(b, 40);
        long l1 = b.getLong(0);
        ch.read(b.clear(), l1);
        long l2 = b.getLong(0) & Layout.OFFSET_MASK;
        return l2 + guest / CS * 8;
    }

    private static long readLong(FileChannel ch, long at) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8);
        ch.read(b, at);
        return b.getLong(0);
    }

    private static void setRefcount(FileChannel ch, long offset, int value) throws IOException {
        long table = readLong(ch, 48);
        long block = readLong(ch, table);
        ch.write(ByteBuffer.allocate(2).putShort(0, (short) value), block + offset / CS * 2);
    }

    private interface Damage {
        void apply(FileChannel ch, long entryAt, long entry) throws IOException;
    }

    /** Damages the L2 entry of the guest cluster at 1 MiB (refcount 1, COPIED set). */
    private Path damaged(Damage d) throws IOException {
        Path img = image();
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long at = l2EntryAt(ch, 1 << 20);
            long e = readLong(ch, at);
            assertTrue(e < 0, "COPIED set on the rewritten cluster");
            d.apply(ch, at, e);
        }
        return img;
    }

    @Test
    void aClearedCopiedFlagIsRepairedByRepairLeaks() throws IOException {
        Path img = damaged((ch, at, e) -> ch.write(ByteBuffer.allocate(8).putLong(0, e & ~Layout.COPIED), at));
        String q = Qemu.check(img);
        assertTrue(q.startsWith("2: ") && q.contains("ERROR OFLAG_COPIED data cluster"), q);
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.NONE);
        assertEquals(1, r.corruptions(), r.toString());
        r = Qcow2Check.check(img, Qcow2Check.Repair.LEAKS);
        assertEquals(1, r.corruptionsFixed(), r.toString());
        assertTrue(r.isClean(), r.toString());
        Qemu.checkClean(img);
    }

    @Test
    void aLeakOnACopiedClusterRepairsClean() throws IOException {
        // refcount 2 with one reference and COPIED set: after the leak is fixed the flag is right
        Path img = damaged((ch, at, e) -> setRefcount(ch, e & Layout.OFFSET_MASK, 2));
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.NONE);
        assertEquals(1, r.leaks(), r.toString());
        assertEquals(1, r.corruptions(), r.toString());
        r = Qcow2Check.check(img, Qcow2Check.Repair.LEAKS);
        assertEquals(1, r.leaksFixed(), r.toString());
        assertEquals(0, r.corruptionsFixed(), r.toString());
        assertTrue(r.isClean(), r.toString());
        Qemu.checkClean(img);
    }

    @Test
    void aLeakOnAClusterWithoutCopiedGetsTheFlagAfterTheRepair() throws IOException {
        // refcount 2 with one reference and COPIED clear: consistent until the leak is fixed
        Path img = damaged((ch, at, e) -> {
            setRefcount(ch, e & Layout.OFFSET_MASK, 2);
            ch.write(ByteBuffer.allocate(8).putLong(0, e & ~Layout.COPIED), at);
        });
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.NONE);
        assertEquals(1, r.leaks(), r.toString());
        assertEquals(0, r.corruptions(), r.toString());
        r = Qcow2Check.check(img, Qcow2Check.Repair.LEAKS);
        assertEquals(1, r.leaksFixed(), r.toString());
        assertEquals(1, r.corruptionsFixed(), r.toString());
        assertTrue(r.isClean(), r.toString());
        Qemu.checkClean(img);
        assertTrue(Qcow2Check.check(img, false).isClean());
    }

    @Test
    void repairAllRaisesARefcountThatIsTooLow() throws IOException {
        Path img = image();
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            // guest 0 was not rewritten: its data cluster is shared with the snapshot (refcount 2)
            long e = readLong(ch, l2EntryAt(ch, 0));
            setRefcount(ch, e & Layout.OFFSET_MASK, 1);
        }
        assertTrue(Qemu.check(img).startsWith("2: "), Qemu.check(img));
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.LEAKS);
        // the low refcount, and the flag that disagrees with it: -r leaks leaves both alone
        assertEquals(2, r.corruptions(), r.toString());
        assertEquals(0, r.corruptionsFixed(), r.toString());
        r = Qcow2Check.check(img, Qcow2Check.Repair.ALL);
        assertEquals(1, r.corruptionsFixed(), r.toString());
        assertTrue(r.isClean(), r.toString());
        Qemu.checkClean(img);
    }

    @Test
    void revertKeepsTheCopiedFlagsRight() throws IOException {
        Path img = dir.resolve("r.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=65536", img.toString(), "8M");
        Qemu.io(img, "write -P 0x11 0 3M", "write -P 0x12 4M 64k");
        Qemu.img("snapshot", "-c", "q1", img.toString());
        Qemu.io(img, "write -P 0x21 1M 1M");
        byte[] want = new byte[8 << 20];
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            InternalSnapshots s = (InternalSnapshots) g.node("q0");
            s.createSnapshot("o1");
            d.write(2 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(3, 128 << 10)), 0);
            // back to QEMU's snapshot: the clusters the other snapshot holds keep refcount 2
            s.revertToSnapshot("q1");
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(4, 64 << 10)), 0);
            s.deleteSnapshot("q1");
            // now only the active image holds most clusters: COPIED again, written in place
            d.write(64 << 10, ByteBuffer.wrap(TestGraphs.randomBytes(5, 64 << 10)), 0);
            d.read(0, ByteBuffer.wrap(want));
        }
        Qemu.checkClean(img);
        assertTrue(Qcow2Check.check(img, false).isClean());
        assertArrayEquals(want, Qemu.raw(img));
        // qemu-io writes after our revert, then QEMU reverts to our snapshot
        Qemu.io(img, "write -P 0x33 4M 128k");
        Qemu.checkClean(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            ((InternalSnapshots) g.node("q0")).revertToSnapshot("o1");
            d.write(3 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(6, 256 << 10)), 0);
            ((InternalSnapshots) g.node("q0")).deleteSnapshot("o1");
            d.write(1 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(7, 64 << 10)), 0);
            d.read(0, ByteBuffer.wrap(want));
        }
        Qemu.checkClean(img);
        assertArrayEquals(want, Qemu.raw(img));
        Qemu.io(img, "write -P 0x44 0 2M");
        Qemu.checkClean(img);
    }

    private static long incompatible(Path img) throws IOException {
        try (FileChannel ch = FileChannel.open(img)) {
            return readLong(ch, 72);
        }
    }

    @Test
    void aCleanRepairClearsTheCorruptMark() throws IOException {
        Path img = damaged((ch, at, e) -> {
            ch.write(ByteBuffer.allocate(8).putLong(0, e & ~Layout.COPIED), at);
            ch.write(ByteBuffer.allocate(8).putLong(0, readLong(ch, 72) | 2), 72);
        });
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            io.diskstack.core.ConfigException e = org.junit.jupiter.api.Assertions.assertThrows(
                    io.diskstack.core.ConfigException.class, () -> g.open(Images.node("q0", img)));
            assertTrue(e.getMessage().contains("marked corrupt"), e.getMessage());
        }
        assertEquals(1, Qcow2Check.check(img, Qcow2Check.Repair.NONE).corruptions());
        assertEquals(2, incompatible(img) & 2, "a check without repair leaves the mark");
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.ALL);
        assertTrue(r.isClean(), r.toString());
        assertEquals(0, incompatible(img) & 2, "the corrupt mark is cleared");
        Qemu.checkClean(img);
        assertTrue(Qemu.run("qemu-img", "info", img.toString()).contains("corrupt: false"));
        Qemu.io(img, "write -P 0x66 0 64k");
        Qemu.checkClean(img);
    }

    @Test
    void aRepairThatLeavesErrorsKeepsTheCorruptMark() throws IOException {
        // an L2 entry past the end of the file: not something a repair can fix
        Path img = damaged((ch, at, e) -> {
            ch.write(ByteBuffer.allocate(8).putLong(0, Layout.COPIED | (1L << 40)), at);
            ch.write(ByteBuffer.allocate(8).putLong(0, readLong(ch, 72) | 2), 72);
        });
        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.ALL);
        assertTrue(r.corruptions() > 0, r.toString());
        assertEquals(2, incompatible(img) & 2, "still marked corrupt");
    }
}
