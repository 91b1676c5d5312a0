package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One mount of a raw image (and a read-only second export), driven with the usual tools. */
class RawMountTest {
    @TempDir
    static Path dir;
    static MountedDaemon daemon;
    static Path image;

    @BeforeAll
    static void mount() throws Exception {
        image = dir.resolve("disk0.img");
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "disk0.img", "format": "raw", "size": "64M"},
                            {"filename": "ro.img", "format": "raw", "size": "1M"}],
                 "blockdev": [{"driver": "file", "node-name": "f0", "filename": "disk0.img"},
                              {"driver": "raw", "node-name": "r0", "file": "f0"},
                              {"driver": "raw", "node-name": "ro", "file": {"driver": "file", "filename": "ro.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true},
                             {"id": "ro", "node-name": "ro"}]}
                """);
        daemon = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
    }

    @AfterAll
    static void unmount() {
        if (daemon != null) {
            daemon.close();
        }
    }

    private static Path disk() {
        return daemon.disk("disk0");
    }

    @Test
    void listsOneFilePerExportWithTheVirtualSizeAndMode0600() throws Exception {
        assertEquals(64L << 20, Files.size(disk()));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(disk())));
        assertEquals("r--------", PosixFilePermissions.toString(Files.getPosixFilePermissions(daemon.disk("ro"))));
        String ls = run("env", "LC_ALL=C", "ls", "-a", daemon.mountpoint().toString()).ok().stdout();
        assertEquals(".\n..\n.control\n.snapshots\ndisk0\nro\n", ls);
    }

    @Test
    void randomDataThroughTheMountEqualsTheImage() {
        Path data = dir.resolve("random.bin");
        sh("head -c 5M /dev/urandom > " + data).ok();
        sh("dd if=" + data + " of=" + disk() + " bs=1M seek=10 conv=notrunc,fsync status=none").ok();
        sh("cmp " + data + " <(dd if=" + image + " bs=1M skip=10 count=5 status=none)").ok();
        sh("cmp " + data + " <(dd if=" + disk() + " bs=1M skip=10 count=5 status=none)").ok();
    }

    @Test
    void unalignedDdWritesLand() {
        Path data = dir.resolve("odd.bin");
        sh("head -c 123000 /dev/urandom > " + data).ok();
        sh("dd if=" + data + " of=" + disk() + " bs=1000 seek=4097 conv=notrunc status=none").ok();
        sh("cmp " + data + " <(dd if=" + image + " bs=1000 skip=4097 count=123 status=none)").ok();
    }

    @Test
    void hexdumpShowsWhatWasWritten() {
        sh("printf 'diskstack!' | dd of=" + disk() + " bs=1 seek=512 conv=notrunc status=none").ok();
        String out = sh("hexdump -C -s 512 -n 16 " + disk()).ok().stdout();
        assertTrue(out.startsWith("00000200  64 69 73 6b 73 74 61 63  6b 21 "), out);
    }

    @Test
    void directIoWorksBothWays() {
        Path data = dir.resolve("direct.bin");
        sh("head -c 1M /dev/urandom > " + data).ok();
        sh("dd if=" + data + " of=" + disk() + " bs=4096 seek=1024 oflag=direct conv=notrunc status=none").ok();
        sh("cmp " + data + " <(dd if=" + disk() + " bs=4096 skip=1024 count=256 iflag=direct status=none)").ok();
    }

    @Test
    void qemuIoWritesAndReadsAPattern() {
        Shell.requireTool("qemu-io");
        String first = run("qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
                disk().toString()).ok().stdout();
        assertTrue(first.contains("read 1048576/1048576 bytes at offset 0") && !first.contains("verification failed"), first);
        String out = run("qemu-io", "-f", "raw", "-t", "none", "-c", "write -P 0x5c 2M 1M", "-c", "read -P 0x5c 2M 1M",
                disk().toString()).ok().stdout();
        assertTrue(out.contains("read 1048576/1048576 bytes at offset 2097152"), out);
        assertTrue(!out.contains("Pattern verification failed"), out);
    }

    @Test
    void sizeIsFixedAndWritesPastTheEndFail() {
        Shell.Result t = run("truncate", "-s", "1M", disk().toString());
        assertNotEquals(0, t.exitCode());
        assertTrue(t.stderr().contains("Invalid argument"), t.stderr());
        Shell.Result w = sh("printf x | dd of=" + disk() + " bs=1 seek=" + (64L << 20) + " conv=notrunc status=none");
        assertNotEquals(0, w.exitCode());
        assertTrue(w.stderr().contains("No space left on device"), w.stderr());
        sh("head -c 4096 /dev/urandom | dd of=" + disk() + " bs=4096 status=none").ok();
    }

    @Test
    void readOnlyExportRefusesWrites() {
        Shell.Result w = sh("printf x | dd of=" + daemon.disk("ro") + " conv=notrunc status=none");
        assertNotEquals(0, w.exitCode());
        assertTrue(w.stderr().contains("Read-only file system") || w.stderr().contains("Permission denied"), w.stderr());
        sh("dd if=" + daemon.disk("ro") + " of=/dev/null bs=64k status=none").ok();
    }

    @Test
    void controlFilesShowTheGraphAndStats() throws Exception {
        String graph = Files.readString(daemon.control("graph"));
        assertTrue(graph.startsWith("disk0  export  writable  64 MiB\n└── r0  raw  64 MiB\n    └── file: f0  file  64 MiB  "
                + image), graph);
        assertTrue(graph.contains("ro  export  read-only  1 MiB\n└── ro  raw  1 MiB\n    └── file: #ro.file  file"), graph);
        sh("dd if=" + disk() + " of=/dev/null bs=64k count=4 status=none").ok();
        String stats = Files.readString(daemon.control("disk0/stats"));
        assertTrue(stats.matches("(?s)reads [1-9][0-9]*\n.*"), stats);
        assertEquals("", Files.readString(daemon.control("last-error")));
        assertNotEquals(0, sh("echo x > " + daemon.control("graph")).exitCode(), "graph is read-only");
    }

    @Test
    void oneMebibyteDirectWritesArriveAsSingleRequests() throws Exception {
        long before = statValue("writes");
        sh("dd if=/dev/zero of=" + disk() + " bs=1M count=4 seek=20 oflag=direct conv=notrunc status=none").ok();
        assertEquals(4, statValue("writes") - before, "libfuse2 alone would split each 1 MiB write into eight");
    }

    private static long statValue(String name) throws Exception {
        for (String line : Files.readAllLines(daemon.control("disk0/stats"))) {
            if (line.startsWith(name + " ")) {
                return Long.parseLong(line.substring(name.length() + 1));
            }
        }
        throw new AssertionError("no " + name + " in stats");
    }

    @Test
    void qemuImgReadsTheDiskAsRaw() {
        Shell.requireTool("qemu-img");
        String info = run("qemu-img", "info", "-f", "raw", "-U", disk().toString()).ok().stdout();
        assertTrue(info.contains("virtual size: 64 MiB (67108864 bytes)"), info);
    }

    @Test
    void fileContentMatchesBytewise() throws Exception {
        byte[] data = new byte[8192];
        new java.util.Random(3).nextBytes(data);
        try (var ch = java.nio.channels.FileChannel.open(disk(), java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(data), 40L << 20);
            ch.force(true);
        }
        byte[] back = new byte[8192];
        try (var f = new java.io.RandomAccessFile(image.toFile(), "r")) {
            f.seek(40L << 20);
            f.readFully(back);
        }
        assertArrayEquals(data, back);
    }
}
