package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Images we create and write, read and checked by qemu-img; images qemu-img made, changed by us. */
class Qcow2WriteInteropTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    private static String infoWithoutName(Path img) throws IOException {
        String json = Qemu.run("qemu-img", "info", "--output=json", img.toString());
        return json.replace(img.getFileName().toString(), "IMG").replaceAll("\"dirty-flag\": false,?", "");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "cluster_size=512", "cluster_size=2M", "compat=0.10", "extended_l2=on",
        "refcount_bits=1", "refcount_bits=64,cluster_size=4096", "lazy_refcounts=on", "compression_type=zstd",
        "cluster_size=16384,extended_l2=on,lazy_refcounts=on"})
    void createLooksLikeQemuImgCreate(String options) throws IOException {
        Path ours = dir.resolve("ours.qcow2");
        Path theirs = dir.resolve("theirs.qcow2");
        String[] kv = options.isEmpty() ? new String[0]
                : Arrays.stream(options.split(",")).flatMap(o -> Arrays.stream(o.split("="))).toArray(String[]::new);
        Images.create(ours, 1L << 30, kv);
        if (options.isEmpty()) {
            Qemu.img("create", "-f", "qcow2", theirs.toString(), "1G");
        } else {
            Qemu.img("create", "-f", "qcow2", "-o", options, theirs.toString(), "1G");
        }
        assertEquals(infoWithoutName(theirs).replace("theirs", "X"), infoWithoutName(ours).replace("ours", "X"));
        Qemu.checkClean(ours);
        assertEquals(Files.size(theirs), Files.size(ours), "same layout");
    }

    @Test
    void createTakesTheSizeFromTheBackingFile() throws IOException {
        Path base = dir.resolve("base.qcow2");
        Qemu.img("create", "-f", "qcow2", base.toString(), "5M");
        Path ours = dir.resolve("ours.qcow2");
        Path theirs = dir.resolve("theirs.qcow2");
        Images.create(ours, -1, "backing_file", "base.qcow2", "backing_fmt", "qcow2");
        Qemu.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", theirs.toString());
        assertEquals(infoWithoutName(theirs).replace("theirs", "X"), infoWithoutName(ours).replace("ours", "X"));
        Qemu.checkClean(ours);
    }

    private static BlockBackend open(BlockGraph g, Path img) throws IOException {
        g.open(Images.node("q0", img));
        return g.addBackend("d", "q0", true);
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=65536", "cluster_size=4096,compression_type=zstd",
        "cluster_size=65536,extended_l2=on"})
    void overwritingCompressedClustersReallocatesThem(String options) throws IOException {
        Path raw = Qcow2ReadInteropTest.makeRaw(dir, "src.raw", 4 << 20, 11);
        Path img = dir.resolve("c.qcow2");
        Qemu.img("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", options, raw.toString(), img.toString());
        byte[] model = Files.readAllBytes(raw);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, img);
            java.util.Random r = new java.util.Random(5);
            for (int i = 0; i < 60; i++) {
                int off = r.nextInt(model.length / 512 - 64) * 512;
                int len = 512 * (1 + r.nextInt(63));
                byte[] data = TestGraphs.randomBytes(i, len);
                d.write(off, ByteBuffer.wrap(data), 0);
                System.arraycopy(data, 0, model, off, len);
            }
            d.writeZeroes(1 << 20, 256 << 10, io.diskstack.core.RequestFlags.MAY_UNMAP);
            Arrays.fill(model, 1 << 20, (1 << 20) + (256 << 10), (byte) 0);
            d.discard(2 << 20, 128 << 10);
            ByteBuffer back = ByteBuffer.allocate(model.length);
            d.read(0, back);
            System.arraycopy(back.array(), 2 << 20, model, 2 << 20, 128 << 10);
            assertArrayEquals(model, back.array());
        }
        Qemu.checkClean(img);
        assertArrayEquals(model, Qemu.raw(img));
    }

    @ParameterizedTest
    @ValueSource(ints = {3, 8, 12})
    void copyUpThroughABackingChain(int topMiB) throws IOException {
        Path base = Qcow2ReadInteropTest.makeRaw(dir, "base.raw", 6 << 20, 3);
        Path mid = dir.resolve("mid.qcow2");
        Qemu.img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "cluster_size=4096", mid.toString());
        Qemu.io(mid, "write -P 0x66 1M 100k", "write -z 2M 64k");
        Path top = dir.resolve("top.qcow2");
        Images.create(top, (long) topMiB << 20, "backing_file", "mid.qcow2", "backing_fmt", "qcow2");
        byte[] model = new byte[topMiB << 20];
        byte[] below = Qemu.raw(mid);
        System.arraycopy(below, 0, model, 0, Math.min(below.length, model.length));
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, top);
            java.util.Random r = new java.util.Random(topMiB);
            for (int i = 0; i < 80; i++) {
                int off = r.nextInt(model.length / 512 - 200) * 512;
                int len = 512 * (1 + r.nextInt(150));
                byte[] data = TestGraphs.randomBytes(100 + i, len);
                d.write(off, ByteBuffer.wrap(data), 0);
                System.arraycopy(data, 0, model, off, len);
            }
        }
        Qemu.checkClean(top);
        assertArrayEquals(model, Qemu.raw(top));
        assertArrayEquals(below, Qemu.raw(mid), "the backing file is untouched");
    }

    @Test
    void snapshotsMadeByQemuImgWorkHere() throws IOException {
        Path img = dir.resolve("s.qcow2");
        Qemu.img("create", "-f", "qcow2", img.toString(), "4M");
        Qemu.io(img, "write -P 0x11 0 1M");
        Qemu.img("snapshot", "-c", "first", img.toString());
        Qemu.io(img, "write -P 0x22 512k 1M");
        Qemu.img("snapshot", "-c", "second", img.toString());
        Qemu.io(img, "write -P 0x33 0 64k");
        byte[] first = snapshotRaw(img, "first");
        byte[] second = snapshotRaw(img, "second");
        byte[] current = Qemu.raw(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, img);
            InternalSnapshots s = (InternalSnapshots) g.node("q0");
            List<InternalSnapshots.Snapshot> list = s.listSnapshots();
            assertEquals(List.of("first", "second"), list.stream().map(InternalSnapshots.Snapshot::name).toList());
            assertEquals(List.of("1", "2"), list.stream().map(InternalSnapshots.Snapshot::id).toList());
            assertEquals(4 << 20, list.get(0).diskSize());
            assertArrayEquals(first, readSnapshot(s, "first"));
            assertArrayEquals(second, readSnapshot(s, "2"));
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 8192)), 0);
            s.revertToSnapshot("first");
            ByteBuffer all = ByteBuffer.allocate(4 << 20);
            d.read(0, all);
            assertArrayEquals(first, all.array());
            s.deleteSnapshot("second");
        }
        Qemu.checkClean(img);
        assertArrayEquals(first, Qemu.raw(img));
        String list = Qemu.run("qemu-img", "snapshot", "-l", img.toString());
        assertTrue(list.contains("first") && !list.contains("second"), list);
        assertTrue(current.length > 0);
    }

    @Test
    void snapshotsMadeHereWorkInQemuImg() throws IOException {
        Path img = dir.resolve("s.qcow2");
        Images.create(img, 4 << 20);
        byte[] a = TestGraphs.randomBytes(1, 1 << 20);
        byte[] b = TestGraphs.randomBytes(2, 1 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, img);
            InternalSnapshots s = (InternalSnapshots) g.node("q0");
            d.write(0, ByteBuffer.wrap(a), 0);
            s.createSnapshot("alpha");
            d.write(512 << 10, ByteBuffer.wrap(b), 0);
            s.createSnapshot("beta");
            d.write(0, ByteBuffer.wrap(b), 0);
            ConfigException dup = assertThrows(ConfigException.class, () -> s.createSnapshot("alpha"));
            assertTrue(dup.getMessage().contains("exists already"), dup.getMessage());
        }
        Qemu.checkClean(img);
        String list = Qemu.run("qemu-img", "snapshot", "-l", img.toString());
        assertTrue(list.contains("alpha") && list.contains("beta"), list);
        byte[] alpha = new byte[4 << 20];
        System.arraycopy(a, 0, alpha, 0, a.length);
        assertArrayEquals(alpha, snapshotRaw(img, "alpha"));
        Qemu.img("snapshot", "-a", "alpha", img.toString());
        assertArrayEquals(alpha, Qemu.raw(img));
        Qemu.img("snapshot", "-d", "beta", img.toString());
        Qemu.checkClean(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            open(g, img);
            InternalSnapshots s = (InternalSnapshots) g.node("q0");
            assertEquals(List.of("alpha"), s.listSnapshots().stream().map(InternalSnapshots.Snapshot::name).toList());
            s.deleteSnapshot("alpha");
        }
        Qemu.checkClean(img);
        assertTrue(!Qemu.run("qemu-img", "snapshot", "-l", img.toString()).contains("alpha"));
    }

    private byte[] snapshotRaw(Path img, String name) throws IOException {
        Path out = dir.resolve("snap-" + name + ".raw");
        Files.deleteIfExists(out);
        Qemu.img("convert", "-l", "snapshot.name=" + name, "-O", "raw", img.toString(), out.toString());
        return Files.readAllBytes(out);
    }

    private static byte[] readSnapshot(InternalSnapshots s, String name) throws IOException {
        try (InternalSnapshots.SnapshotReader r = s.openSnapshot(name)) {
            ByteBuffer b = ByteBuffer.allocate((int) r.size());
            r.read(0, b);
            return b.array();
        }
    }

    @Test
    void unknownHeaderExtensionsSurviveWritesAndSnapshots() throws IOException {
        Path img = dir.resolve("u.qcow2");
        Qemu.img("create", "-f", "qcow2", img.toString(), "4M");
        ByteBuffer h = ByteBuffer.wrap(Files.readAllBytes(img), 0, 4096);
        int pos = 112;
        while (h.getInt(pos) != 0) {
            pos += 8 + ((h.getInt(pos + 4) + 7) & ~7);
        }
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ByteBuffer ext = ByteBuffer.allocate(24).putInt(0, 0x7e57ab1e).putInt(4, 5);
            ext.put(8, "hello".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            ch.write(ext, pos);
        }
        byte[] before = Arrays.copyOfRange(Files.readAllBytes(img), 96, 4096);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, img);
            d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(3, 1 << 20)), 0);
            ((InternalSnapshots) g.node("q0")).createSnapshot("x");
            d.write(4096, ByteBuffer.wrap(TestGraphs.randomBytes(4, 4096)), 0);
        }
        byte[] after = Arrays.copyOfRange(Files.readAllBytes(img), 96, 4096);
        assertArrayEquals(before, after, "header extensions and the rest of the header are unchanged");
        Qemu.checkClean(img);
    }

    @Test
    void lazyRefcountsSetTheDirtyBitOnFirstWriteAndClearItOnClose() throws IOException {
        Path img = dir.resolve("l.qcow2");
        Images.create(img, 4 << 20, "lazy_refcounts", "on");
        byte[] pristine = Files.readAllBytes(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            open(g, img);
        }
        assertArrayEquals(pristine, Files.readAllBytes(img), "open and close without writes change nothing");
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, img);
            assertEquals(0, incompatible(img) & 1);
            d.write(0, ByteBuffer.wrap(new byte[4096]), 0);
            assertEquals(1, incompatible(img) & 1, "dirty while written");
        }
        assertEquals(0, incompatible(img) & 1, "clean after close");
        Qemu.checkClean(img);
    }

    private static long incompatible(Path img) throws IOException {
        try (FileChannel ch = FileChannel.open(img)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, 72);
            return b.getLong(0);
        }
    }

    @Test
    void aDirtyLazyImageIsRepairedWhenOpenedWritable() throws IOException {
        Path img = dir.resolve("d.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "lazy_refcounts=on", img.toString(), "4M");
        Qemu.io(img, "write -P 0x41 0 1M");
        // leave the image as a crash would: dirty, with a leaked cluster's refcount raised
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
            ch.write(ByteBuffer.allocate(8).putLong(0, 1), 72);
        }
        byte[] before = Files.readAllBytes(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            Map<String, Object> ro = Images.node("q0", img);
            ro.put("read-only", true);
            g.open(ro);
        }
        assertArrayEquals(before, Files.readAllBytes(img), "a read-only open changes nothing");
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            assertEquals(0, incompatible(img) & 1, "a writable open repairs at once, as QEMU does");
        }
        Qemu.checkClean(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, img);
            d.write(2 << 20, ByteBuffer.wrap(TestGraphs.randomBytes(9, 65536)), 0);
        }
        assertEquals(0, incompatible(img) & 1);
        Qemu.checkClean(img);
    }

    /** A lazy-refcounts image QEMU was killed with: refcounts stale, COPIED set on clusters with refcount 0. */
    private Path imageQemuLeftDirty(String name) throws IOException {
        Path img = dir.resolve(name);
        Qemu.img("create", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", img.toString(), "8M");
        Qemu.Result r = Qemu.exec("qemu-io", "-f", "qcow2", "-c", "write -P 0x41 0 1M", "-c", "write -P 0x42 4M 64k",
                "-c", "sigraise 9", img.toString());
        assertEquals(137, r.exit(), r.out() + r.err());
        assertEquals(1, incompatible(img) & 1, "QEMU left it dirty");
        assertTrue(Qemu.check(img).contains("OFLAG_COPIED"), Qemu.check(img));
        return img;
    }

    private static byte[] qemuDirtyContent() {
        byte[] want = new byte[8 << 20];
        Arrays.fill(want, 0, 1 << 20, (byte) 0x41);
        Arrays.fill(want, 4 << 20, (4 << 20) + 65536, (byte) 0x42);
        return want;
    }

    @Test
    void aDirtyImageQemuWasKilledWithIsRepairedBeforeTheFirstWrite() throws IOException {
        Path img = imageQemuLeftDirty("qd.qcow2");
        byte[] want = qemuDirtyContent();
        byte[] mine = TestGraphs.randomBytes(10, 65536);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = open(g, img);
            d.write(6 << 20, ByteBuffer.wrap(mine), 0);
        }
        System.arraycopy(mine, 0, want, 6 << 20, mine.length);
        assertEquals(0, incompatible(img) & 1);
        Qemu.checkClean(img);
        assertArrayEquals(want, Qemu.raw(img));

        // as qemu-img check: -r leaks stops at refcounts of 0 (only a rebuild repairs them), -r all repairs
        Path other = imageQemuLeftDirty("qd2.qcow2");
        Qcow2Check.Report r = Qcow2Check.check(other, true);
        assertEquals(1, r.checkErrors(), r.toString());
        assertEquals(1, Qemu.exec("qemu-img", "check", "-r", "leaks", other.toString()).exit());
        r = Qcow2Check.check(other, Qcow2Check.Repair.ALL);
        assertTrue(r.isClean() && r.corruptionsFixed() > 0, r.toString());
        assertEquals(0, incompatible(other) & 1);
        Qemu.checkClean(other);
        assertArrayEquals(qemuDirtyContent(), Qemu.raw(other));
    }

    @Test
    void theCorruptBitRefusesWritableOpens() throws IOException {
        Path img = dir.resolve("c.qcow2");
        Images.create(img, 4 << 20);
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).putLong(0, 2), 72);
        }
        byte[] before = Files.readAllBytes(img);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            ConfigException e = assertThrows(ConfigException.class, () -> g.open(Images.node("q0", img)));
            assertTrue(e.getMessage().contains("marked corrupt") && e.getMessage().contains(img.toString()),
                    e.getMessage());
            assertTrue(e.getMessage().contains("repair it with diskstack check -r all '" + img + "'"), e.getMessage());
            Map<String, Object> ro = Images.node("q1", img);
            ro.put("read-only", true);
            g.open(ro);
        }
        assertArrayEquals(before, Files.readAllBytes(img));
    }
}
