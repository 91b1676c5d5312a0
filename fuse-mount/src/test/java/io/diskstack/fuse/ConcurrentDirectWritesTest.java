package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The case qemu-storage-daemon 7.2's FUSE export gets wrong: 32 concurrent O_DIRECT aio writes
 * from qemu-io with linux-aio. It reuses the FUSE buffer after the callback returns and loses
 * about half the data; we must lose none.
 */
class ConcurrentDirectWritesTest {
    @TempDir
    Path dir;

    @Test
    void thirtyTwoConcurrentAioWritesAllLand() throws Exception {
        Shell.requireTool("qemu-io");
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "disk0.img", "format": "raw", "size": "64M"}],
                 "blockdev": [{"driver": "raw", "node-name": "r0",
                               "file": {"driver": "file", "filename": "disk0.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            for (int round = 0; round < 3; round++) {
                List<String> write = new ArrayList<>(List.of("qemu-io", "-f", "raw", "-n", "-i", "native"));
                List<String> verify = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
                for (int i = 0; i < 32; i++) {
                    int pattern = 1 + i + round * 32;
                    String range = (i * 256) + "k 256k";
                    write.add("-c");
                    write.add("aio_write -P " + pattern + " " + range);
                    verify.add("-c");
                    verify.add("read -P " + pattern + " " + range);
                }
                write.add("-c");
                write.add("aio_flush");
                write.add(d.disk("disk0").toString());
                verify.add(d.disk("disk0").toString());
                Shell.run(java.time.Duration.ofMinutes(2), null, write).ok();
                String out = Shell.run(java.time.Duration.ofMinutes(2), null, verify).ok().stdout();
                assertFalse(out.contains("Pattern verification failed"), "round " + round + ": " + out);
                assertTrue(out.split("read 262144/262144 bytes").length == 33, out);
                // The image is mounted: QEMU's locking lets qemu-io read it only read-only with -U.
                List<String> readImage = replaceLast(verify, dir.resolve("disk0.img").toString());
                readImage.addAll(1, List.of("-r", "-U"));
                String image = Shell.run(java.time.Duration.ofMinutes(2), null, readImage).ok().stdout();
                assertFalse(image.contains("Pattern verification failed"), "image file, round " + round + ": " + image);
            }
        }
    }

    /**
     * libaio direct reads at queue depth 16 reach the daemon concurrently. Without asynchronous
     * direct I/O (which libfuse2 alone cannot negotiate) the kernel serves each one inside
     * io_submit and at most one is ever in flight.
     */
    @Test
    void asynchronousDirectReadsAreServedInParallel() throws Exception {
        Shell.requireTool("fio");
        int peak = peakInFlight("read", 20, "--name=qd16", "--rw=randread", "--ioengine=libaio", "--iodepth=16",
                "--number_ios=128");
        assertTrue(peak >= 4, "requests in flight at once: " + peak);
    }

    /**
     * Two synchronous O_DIRECT writers to one disk. The kernel holds the file's inode lock across
     * each direct write (round trip included) unless the open reply says
     * FOPEN_PARALLEL_DIRECT_WRITES, so without it the daemon never sees two writes at once.
     */
    @Test
    void directWritesFromTwoWritersReachTheDiskTogether() throws Exception {
        Shell.requireTool("fio");
        int peak = peakInFlight("write", 10, "--name=two", "--rw=randwrite", "--ioengine=psync", "--numjobs=2",
                "--number_ios=40");
        assertTrue(peak >= 2, "writes in flight at once: " + peak);
    }

    /**
     * Mounts a 16 MiB raw disk whose {@code iotype} requests take {@code ms} each (blkdebug), runs
     * fio on it with O_DIRECT 4 KiB requests and {@code fioArgs}, and returns the most requests
     * the export had in flight at once ({@code peak-in-flight} in its stats).
     */
    private int peakInFlight(String iotype, int ms, String... fioArgs) throws Exception {
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "disk0.img", "format": "raw", "size": "16M"}],
                 "blockdev": [{"driver": "blkdebug", "node-name": "slow", "file": {"driver": "file", "filename": "disk0.img"},
                               "inject-delay": [{"iotype": "%s", "ms": %d}]},
                              {"driver": "raw", "node-name": "r0", "file": "slow"}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """.formatted(iotype, ms));
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            List<String> fio = new java.util.ArrayList<>(List.of("fio", "--filename=" + d.disk("disk0"), "--bs=4k",
                    "--direct=1", "--size=16M"));
            fio.addAll(List.of(fioArgs));
            Shell.run(fio.toArray(new String[0])).ok();
            String stats = Files.readString(d.control("disk0/stats"));
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("peak-in-flight (\\d+)").matcher(stats);
            assertTrue(m.find(), stats);
            return Integer.parseInt(m.group(1));
        }
    }

    private static List<String> replaceLast(List<String> cmd, String last) {
        List<String> c = new ArrayList<>(cmd);
        c.set(c.size() - 1, last);
        return c;
    }
}
