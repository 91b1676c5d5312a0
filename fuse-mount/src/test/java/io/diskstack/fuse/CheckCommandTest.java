package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import java.io.PrintWriter;
import java.io.StringWriter;
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

    private String[] diskstack(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }

    /**
     * A leaked refcount on a cluster whose COPIED flag is set: the flag is wrong only until the
     * leak is repaired, so -r leaks ends clean and exits 0, as qemu-img check -r leaks does.
     */
    @Test
    void aRepairThatLeavesTheImageCleanExitsZero() throws Exception {
        Path img = dir.resolve("c.qcow2");
        assertEquals("0", diskstack("create", "-f", "qcow2", "-o", "cluster_size=4096", img.toString(), "1M")[0]);
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
        String[] r = diskstack("check", img.toString());
        assertEquals("2", r[0], r[1] + r[2]);
        r = diskstack("check", "-r", "leaks", img.toString());
        assertEquals("0", r[0], r[1] + r[2]);
        assertTrue(r[1].contains("No errors were found on the image."), r[1]);
        Shell.Result q = Shell.run("qemu-img", "check", img.toString());
        assertEquals(0, q.exitCode(), q.stdout() + q.stderr());
        Shell.Result read = Shell.run("qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 4k", img.toString());
        assertTrue(read.exitCode() == 0 && !read.stdout().contains("fail"), read.stdout() + read.stderr());
    }

    @Test
    void createThenCheckThenRepairALeak() throws Exception {
        Path img = dir.resolve("a.qcow2");
        String[] r = diskstack("create", "-f", "qcow2", "-o", "cluster_size=4096,lazy_refcounts=on",
                img.toString(), "16M");
        assertEquals("0", r[0], r[2]);
        r = diskstack("check", img.toString());
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("No errors were found on the image."), r[1]);
        // leak two clusters: grow the file, then give two of its new clusters refcount 1
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(1), 4096 * 50);
            ByteBuffer t = ByteBuffer.allocate(8);
            ch.read(t, 4096);
            long block = t.getLong(0);
            ch.write(ByteBuffer.allocate(4).putShort(0, (short) 1).putShort(2, (short) 1), block + 2 * 40);
        }
        r = diskstack("check", img.toString());
        assertEquals("3", r[0], r[1] + r[2]);
        assertTrue(r[1].contains("2 leaked clusters were found"), r[1]);
        r = diskstack("check", "-r", "leaks", img.toString());
        assertEquals("0", r[0], r[1] + r[2]);
        assertTrue(r[1].contains("    2 leaked clusters\n    0 corruptions\n"), r[1]);
        assertTrue(r[1].contains("No errors were found on the image."), r[1]);
        Shell.Result q = Shell.run("qemu-img", "check", img.toString());
        assertEquals(0, q.exitCode(), q.stdout() + q.stderr());
        r = diskstack("check", "-r", "all", img.toString());
        assertEquals("0", r[0], r[1] + r[2]);
        r = diskstack("check", "-r", "some", img.toString());
        assertEquals("2", r[0]);
        assertEquals("diskstack: check: -r 'some' is not supported (leaks or all)\n", r[2]);
        r = diskstack("check", dir.resolve("none.qcow2").toString());
        assertEquals("2", r[0]);
        Files.writeString(dir.resolve("raw.img"), "not qcow2");
        r = diskstack("check", dir.resolve("raw.img").toString());
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("is too short to be a qcow2 image") || r[2].contains("not a qcow2 image"), r[2]);
    }
}
