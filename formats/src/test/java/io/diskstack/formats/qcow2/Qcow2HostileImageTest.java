package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images crafted to make us write over our own metadata: the write fails with EIO, names the
 * image, nothing is overwritten, and the image is marked corrupt as QEMU would.
 */
class Qcow2HostileImageTest {
    private static final int CS = 65536;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    private static ByteBuffer read(Path img, long at, int n) throws IOException {
        try (FileChannel ch = FileChannel.open(img)) {
            ByteBuffer b = ByteBuffer.allocate(n);
            ch.read(b, at);
            return b.flip();
        }
    }

    private static void patch(Path img, long at, ByteBuffer value) throws IOException {
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(value, at);
        }
    }

    /** qemu-img's layout at 64 KiB clusters: header, refcount table, refcount block, L1 table. */
    private Path qemuImage() throws IOException {
        Path img = dir.resolve("h.qcow2");
        Files.deleteIfExists(img);
        Qemu.img("create", "-f", "qcow2", img.toString(), "64M");
        Qemu.io(img, "write -P 0x5a 0 64k");
        return img;
    }

    private BlockIOException failingWrite(Path img, long guestOffset, int length) throws IOException {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            BlockIOException e = assertThrows(BlockIOException.class,
                    () -> d.write(guestOffset, ByteBuffer.wrap(TestGraphs.randomBytes(3, length)), 0));
            assertEquals(Errno.EIO, e.errno());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertTrue(e.getMessage().contains(img.toString()), "names the image: " + e.getMessage());
            assertTrue(e.getMessage().contains("repair it with diskstack check -r all '" + img + "'"), e.getMessage());
            BlockIOException again = assertThrows(BlockIOException.class,
                    () -> d.write(8 << 20, ByteBuffer.wrap(new byte[4096]), 0));
            assertTrue(again.getMessage().contains("corrupt"), again.getMessage());
            d.read(0, ByteBuffer.allocate(65536)); // reads still work
            return e;
        }
    }

    private static void assertMarkedCorrupt(Path img) throws IOException {
        assertEquals(2, read(img, 72, 8).getLong() & 2, "the corrupt bit is set");
        assertTrue(Qemu.run("qemu-img", "info", img.toString()).contains("corrupt: true"));
    }

    @Test
    void anL2EntryPointingAtTheRefcountTable() throws IOException {
        Path img = qemuImage();
        long refTable = read(img, 48, 8).getLong();
        long l1 = read(img, 40, 8).getLong();
        long l2 = read(img, l1, 8).getLong() & Layout.OFFSET_MASK;
        patch(img, l2, ByteBuffer.allocate(8).putLong(0, refTable | Layout.COPIED));
        byte[] table = Arrays.copyOf(read(img, refTable, CS).array(), CS);
        BlockIOException e = failingWrite(img, 0, 4096);
        // the refcounts do not account for the second reference: the first write refuses the image
        assertTrue(e.getMessage().contains("host offset " + refTable + ") has refcount 1 but 2 references"),
                e.getMessage());
        assertArrayEquals(table, read(img, refTable, CS).array(), "the refcount table is intact");
        assertMarkedCorrupt(img);
    }

    @Test
    void anL2EntryPointingAtTheL1Table() throws IOException {
        Path img = qemuImage();
        long l1 = read(img, 40, 8).getLong();
        long l2 = read(img, l1, 8).getLong() & Layout.OFFSET_MASK;
        patch(img, l2, ByteBuffer.allocate(8).putLong(0, l1 | Layout.COPIED));
        byte[] before = Arrays.copyOf(read(img, l1, CS).array(), CS);
        BlockIOException e = failingWrite(img, 0, CS);
        assertTrue(e.getMessage().contains("host offset " + l1 + ") has refcount 1 but 2 references"),
                e.getMessage());
        assertArrayEquals(before, read(img, l1, CS).array(), "the L1 table is intact");
        assertMarkedCorrupt(img);
    }

    @Test
    void anL2EntryWithoutCopiedPointingAtARefcountBlock() throws IOException {
        Path img = qemuImage();
        long l1 = read(img, 40, 8).getLong();
        long block = read(img, read(img, 48, 8).getLong(), 8).getLong();
        long l2 = read(img, l1, 8).getLong() & Layout.OFFSET_MASK;
        // refcount 1 and no COPIED flag: a partial write would reuse the cluster after filling it
        patch(img, l2 + 8, ByteBuffer.allocate(8).putLong(0, block));
        byte[] before = Arrays.copyOf(read(img, block, CS).array(), CS);
        BlockIOException e = failingWrite(img, CS + 512, 1000);
        assertTrue(e.getMessage().contains("refcount block"), e.getMessage());
        assertArrayEquals(before, read(img, block, CS).array(), "the refcount block is intact");
        assertMarkedCorrupt(img);
    }

    @Test
    void aRefcountOfZeroOnTheL1TableDoesNotGetItOverwritten() throws IOException {
        Path img = qemuImage();
        long l1 = read(img, 40, 8).getLong();
        long refTable = read(img, 48, 8).getLong();
        long block = read(img, refTable, 8).getLong();
        // 16-bit refcounts: the L1 table's cluster looks free to the allocator
        patch(img, block + (l1 / CS) * 2, ByteBuffer.allocate(2));
        byte[] l1Before = Arrays.copyOf(read(img, l1, CS).array(), CS);
        // a write to a new L2 range allocates a table: the first free cluster is the L1 table's
        BlockIOException e = failingWrite(img, 32 << 20, 4096);
        assertTrue(e.getMessage().contains("host offset " + l1 + ") has refcount 0 but 1 references: a new "
                + "allocation could overwrite it"), e.getMessage());
        assertArrayEquals(l1Before, read(img, l1, CS).array(), "the L1 table is intact");
        assertMarkedCorrupt(img);
    }

    /** Runs {@code body} on another thread and fails if it has not finished within {@code seconds}. */
    private static <T> T within(int seconds, java.util.concurrent.Callable<T> body) throws Exception {
        java.util.concurrent.ExecutorService ex = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "hostile");
            t.setDaemon(true);
            return t;
        });
        try {
            // never interrupted on timeout: an interrupt would close the file channel under it
            return ex.submit(body).get(seconds, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("still running after " + seconds + " s: the allocator spins");
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof Exception x) {
                throw x;
            }
            throw new AssertionError(e.getCause());
        } finally {
            ex.shutdown();
        }
    }

    @Test
    void everyRefcountBlockFullFailsTheAllocationInsteadOfSpinning() throws Exception {
        Path img = qemuImage();
        long l1 = read(img, 40, 8).getLong();
        long l2 = read(img, l1, 8).getLong() & Layout.OFFSET_MASK;
        long data = read(img, l2, 8).getLong() & Layout.OFFSET_MASK;
        // a refcount table of 4 MiB (half the most we accept) at the end of the file, every entry
        // pointing at the data cluster full of 0x5a: every refcount is 0x5a5a, over 2^34 clusters
        long refTable = (Files.size(img) + CS - 1) / CS * CS;
        int clusters = 64;
        int entries = clusters * CS / 8;
        ByteBuffer t = ByteBuffer.allocate(entries * 8);
        for (int i = 0; i < entries; i++) {
            t.putLong(data);
        }
        patch(img, refTable, t.flip());
        patch(img, 48, ByteBuffer.allocate(12).putLong(0, refTable).putInt(8, clusters));
        byte[] before = Qemu.raw(img);
        BlockIOException e = within(60, () -> failingWrite(img, 1 << 20, 4096));
        assertTrue(e.getMessage().contains("refcount block 0 at offset " + data + " has 2 references"),
                e.getMessage());
        assertMarkedCorrupt(img);
        assertArrayEquals(before, Qemu.raw(img), "the guest data is unchanged");
    }

    @Test
    void aRefcountTableEntryPointingAtTheL1TableRefusesWritableOpens() throws IOException {
        Path img = qemuImage();
        long l1 = read(img, 40, 8).getLong();
        long refTable = read(img, 48, 8).getLong();
        patch(img, refTable + 8, ByteBuffer.allocate(8).putLong(0, l1));
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            io.diskstack.core.ConfigException e = assertThrows(io.diskstack.core.ConfigException.class,
                    () -> g.open(Images.node("q0", img)));
            assertTrue(e.getMessage().contains(img.toString())
                    && e.getMessage().contains("refcount table entry 1") && e.getMessage().contains("L1 table"),
                    e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
        // read-only, the refcounts are not used
        byte[] ours = Qemu.readOurs(img);
        assertEquals(0x5a, ours[0]);
        // past the end of the file
        patch(img, refTable + 8, ByteBuffer.allocate(8).putLong(0, 1L << 40));
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            io.diskstack.core.ConfigException e = assertThrows(io.diskstack.core.ConfigException.class,
                    () -> g.open(Images.node("q0", img)));
            assertTrue(e.getMessage().contains("past the end of the file"), e.getMessage());
        }
    }

    /** qemu-img check's exit status. */
    private static int qemuCheck(Path img) throws IOException {
        return Qemu.exec("qemu-img", "check", img.toString()).exit();
    }

    @Test
    void aRefcountOfZeroOnADataClusterIsNotHandedOutAgainUntilCheckRepairsIt() throws IOException {
        Path img = qemuImage();
        long l1 = read(img, 40, 8).getLong();
        long l2 = read(img, l1, 8).getLong() & Layout.OFFSET_MASK;
        long data = read(img, l2, 8).getLong() & Layout.OFFSET_MASK;
        long block = read(img, read(img, 48, 8).getLong(), 8).getLong();
        patch(img, block + (data / CS) * 2, ByteBuffer.allocate(2));
        assertEquals(2, qemuCheck(img), "qemu-img check calls it corrupt too");
        // the first free cluster is the data cluster: a write elsewhere would be written over guest offset 0
        BlockIOException e = failingWrite(img, 1 << 20, 4096);
        assertTrue(e.getMessage().contains("host offset " + data + ") has refcount 0 but 1 references"),
                e.getMessage());
        assertMarkedCorrupt(img);
        byte[] before = Qemu.raw(img);
        assertEquals(0x5a, before[65535]);

        Qcow2Check.Report r = Qcow2Check.check(img, Qcow2Check.Repair.ALL);
        assertTrue(r.isClean() && r.corruptionsFixed() > 0, r.toString());
        Qemu.checkClean(img);
        assertEquals(0, read(img, 72, 8).getLong() & 2, "the repair clears the corrupt bit");
        byte[] mine = TestGraphs.randomBytes(4, 4096);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            g.addBackend("d", "q0", true).write(1 << 20, ByteBuffer.wrap(mine), 0);
        }
        System.arraycopy(mine, 0, before, 1 << 20, mine.length);
        assertArrayEquals(before, Qemu.raw(img), "guest offset 0 keeps its data, the new write is there");
        Qemu.checkClean(img);
    }

    /**
     * Metadata that changes under a running node (another program writing the image) is caught by
     * the overlap checks, as QEMU's: an L2 table read after the first write points a guest cluster
     * at the refcount table or a refcount block. overlap-check chooses what is checked.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({
        "overlap-check, cached, refcount-block, refused",
        "overlap-check, constant, refcount-table, refused",
        "overlap-check, constant, refcount-block, written",
        "overlap-check.refcount-block, off, refcount-block, written",
        "overlap-check, none, refcount-table, written",
    })
    void overlapChecksCatchMetadataChangedUnderTheNode(String key, String value, String target, String outcome)
            throws IOException {
        Path img = dir.resolve("o.qcow2");
        Files.deleteIfExists(img);
        Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=4096", img.toString(), "8M");
        Qemu.io(img, "write -P 0x5a 0 64k", "write -P 0x5a 4M 64k");
        long refTable = read(img, 48, 8).getLong();
        long block = read(img, refTable, 8).getLong();
        long l1 = read(img, 40, 8).getLong();
        long secondL2 = read(img, l1 + 16, 8).getLong() & Layout.OFFSET_MASK;
        long victim = target.equals("refcount-table") ? refTable : block;
        byte[] victimBefore = Arrays.copyOf(read(img, victim, 4096).array(), 4096);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            java.util.Map<String, Object> o = Images.node("q0", img);
            o.put(key, value);
            g.open(o);
            BlockBackend d = g.addBackend("d", "q0", true);
            d.write(0, ByteBuffer.wrap(new byte[4096]), 0);
            // another program points guest offset 4M at the metadata (the node has not read that table yet)
            patch(img, secondL2, ByteBuffer.allocate(8).putLong(0, victim | Layout.COPIED));
            ByteBuffer data = ByteBuffer.wrap(TestGraphs.randomBytes(5, 512));
            if (outcome.equals("refused")) {
                BlockIOException e = assertThrows(BlockIOException.class, () -> d.write(4 << 20, data, 0));
                assertTrue(e.getMessage().contains("preventing a write of guest data to host offset " + victim)
                        && e.getMessage().contains("holds " + (target.equals("refcount-table")
                        ? "the refcount table" : "a refcount block")), e.getMessage());
                assertArrayEquals(victimBefore, Arrays.copyOf(read(img, victim, 4096).array(), 4096));
            } else {
                d.write(4 << 20, data, 0);
                assertFalse(Arrays.equals(victimBefore, Arrays.copyOf(read(img, victim, 4096).array(), 4096)),
                        "with the check off, the write lands on the metadata, as in QEMU");
            }
        }
    }
}
