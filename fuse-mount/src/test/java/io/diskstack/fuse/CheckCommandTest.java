package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.InProcessCli.Outcome;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code diskstack create -f qcow2} and {@code diskstack check [-r leaks]}, in process. */
class CheckCommandTest {
    @TempDir
    Path dir;

    /**
     * A leaked refcount on a cluster whose COPIED flag is set: the flag is wrong only until the
     * leak is repaired, so -r leaks ends clean and exits 0, as qemu-img check -r leaks does.
     */
    @Test
    void aRepairThatLeavesTheImageCleanExitsZero() throws Exception {
        Path img = dir.resolve("c.qcow2");
        assertEquals(0, diskstack("create", "-f", "qcow2", "-o", "cluster_size=4096", img.toString(), "1M").code());
        Shell.Result w = Shell.run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 4k", img.toString());
        assertEquals(0, w.exitCode(), w.stderr());
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, 40);
            ch.read(b.clear(), b.getLong(0));
            ch.read(b.clear(), b.getLong(0) & 0x00ff_ffff_ffff_fe00L);
            long data = b.getLong(0) & 0x00ff_ffff_ffff_fe00L;
            ch.read(b.clear(), 48);
            ch.read(b.clear(), b.getLong(0));
            ch.write(ByteBuffer.allocate(2).putShort(0, (short) 2), b.getLong(0) + data / 4096 * 2);
        }
        Outcome r = diskstack("check", img.toString());
        assertEquals(2, r.code(), r.out() + r.err());
        r = diskstack("check", "-r", "leaks", img.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("No errors were found on the image."), r.out());
        Shell.Result q = Shell.run("qemu-img", "check", img.toString());
        assertEquals(0, q.exitCode(), q.stdout() + q.stderr());
        Shell.Result read = Shell.run("qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 4k", img.toString());
        assertTrue(read.exitCode() == 0 && !read.stdout().contains("fail"), read.stdout() + read.stderr());
    }

    @Test
    void createThenCheckThenRepairALeak() throws Exception {
        Path img = dir.resolve("a.qcow2");
        Outcome r = diskstack("create", "-f", "qcow2", "-o", "cluster_size=4096,lazy_refcounts=on",
                img.toString(), "16M");
        assertEquals(0, r.code(), r.err());
        r = diskstack("check", img.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("No errors were found on the image."), r.out());
        // leak two clusters: grow the file, then give two of its new clusters refcount 1
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(1), 4096 * 50);
            ByteBuffer t = ByteBuffer.allocate(8);
            ch.read(t, 4096);
            long block = t.getLong(0);
            ch.write(ByteBuffer.allocate(4).putShort(0, (short) 1).putShort(2, (short) 1), block + 2 * 40);
        }
        r = diskstack("check", img.toString());
        assertEquals(3, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("2 leaked clusters were found"), r.out());
        r = diskstack("check", "-r", "leaks", img.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("    2 leaked clusters\n    0 corruptions\n"), r.out());
        assertTrue(r.out().contains("No errors were found on the image."), r.out());
        Shell.Result q = Shell.run("qemu-img", "check", img.toString());
        assertEquals(0, q.exitCode(), q.stdout() + q.stderr());
        r = diskstack("check", "-r", "all", img.toString());
        assertEquals(0, r.code(), r.out() + r.err());
        r = diskstack("check", "-r", "some", img.toString());
        assertEquals(2, r.code());
        assertEquals("diskstack: check: -r 'some' is not supported (leaks or all)\n", r.err());
        // as qemu-img check: an image that cannot be opened is a check that could not complete
        r = diskstack("check", dir.resolve("none.qcow2").toString());
        assertEquals(1, r.code());
        Files.writeString(dir.resolve("raw.img"), "not qcow2");
        r = diskstack("check", dir.resolve("raw.img").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("is too short to be a qcow2 image") || r.err().contains("not a qcow2 image"), r.err());
    }
}
