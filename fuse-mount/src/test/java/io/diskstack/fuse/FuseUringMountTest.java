package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * FUSE over io_uring ({@code -o io_uring}) on the real kernel: requests reach the daemon through
 * its ring entries (it counts them), fio's checked writes at queue depth 32 from two jobs come back
 * right, through the rings and after a remount without them; when the kernel's fuse module says
 * no, the mount says so in one line and serves /dev/fuse. Sets the module's {@code enable_uring}
 * (root only) and puts it back afterwards; mounts that do not ask for io_uring ignore it.
 */
class FuseUringMountTest {
    private static final Pattern SERVED = Pattern.compile("FUSE over io_uring served (\\d+) requests");
    private static String enableUringBefore;

    @TempDir
    Path dir;

    @BeforeAll
    static void kernelWithFuseOverIoUring() throws Exception {
        Assumptions.assumeTrue(Files.isWritable(FuseUring.ENABLE_URING),
                "needs root and a kernel with FUSE over io_uring (" + FuseUring.ENABLE_URING + ")");
        enableUringBefore = Files.readString(FuseUring.ENABLE_URING).trim();
    }

    @AfterAll
    static void putTheSettingBack() throws Exception {
        if (enableUringBefore != null) {
            Files.writeString(FuseUring.ENABLE_URING, enableUringBefore);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"raw", "qcow2"})
    void requestsGoThroughTheRingsAndConcurrentWritesVerify(String format) throws Exception {
        Shell.requireTool("fio");
        Files.writeString(FuseUring.ENABLE_URING, "Y");
        Path config = FioVerifyMountTest.singleDiskConfig(dir, format);
        Path mnt = dir.resolve("mnt");
        String log;
        Path src = dir.resolve("src");
        Shell.run("dd", "if=/dev/urandom", "of=" + src, "bs=1M", "count=8", "status=none").ok();
        try (MountedDaemon d = mount(config, mnt, "io_uring_entries=2")) {
            // whole-MiB requests: a read's data goes straight into the ring entry's buffer
            Shell.run("dd", "if=" + src, "of=" + d.disk("disk0"), "bs=1M", "oflag=direct", "conv=notrunc",
                    "status=none").ok();
            Path back = dir.resolve("back");
            Shell.run("dd", "if=" + d.disk("disk0"), "of=" + back, "bs=1M", "count=8", "iflag=direct",
                    "status=none").ok();
            Shell.run("cmp", src.toString(), back.toString()).ok();
            FioVerifyMountTest.verifiedFio(d.disk("disk0"), false);
            assertEquals(0, d.unmount(), d.log());
            log = d.log();
        }
        assertTrue(Pattern.compile("FUSE over io_uring: \\d+ queues of 2 entries").matcher(log).find(), log);
        Matcher served = SERVED.matcher(log);
        assertTrue(served.find(), log);
        // fio wrote 8192 blocks and read each back: nearly all of it came through the rings
        assertTrue(Long.parseLong(served.group(1)) >= 16384, log);
        try (MountedDaemon d = MountedDaemon.mount(config, mnt)) {
            FioVerifyMountTest.verifiedFio(d.disk("disk0"), true);
        }
        if (format.equals("qcow2")) {
            Shell.run("qemu-img", "check", dir.resolve("disk0.img").toString()).ok();
        }
    }

    @Test
    void sigtermUnderLoadKeepsWhatWasFsyncedAndKillNineLeavesNoDeadMount() throws Exception {
        Files.writeString(FuseUring.ENABLE_URING, "Y");
        Path config = FioVerifyMountTest.singleDiskConfig(dir, "raw");
        Path data = dir.resolve("synced.bin");
        Shell.sh("head -c 4M /dev/urandom > " + data).ok();
        MountedDaemon d = mount(config, dir.resolve("mnt"), "io_uring");
        try {
            Shell.sh("dd if=" + data + " of=" + d.disk("disk0") + " bs=1M seek=8 conv=notrunc,fsync status=none").ok();
            Process writer = new ProcessBuilder("fio", "--name=w", "--filename=" + d.disk("disk0"), "--rw=randwrite",
                    "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=16", "--size=8M", "--time_based",
                    "--runtime=20").redirectErrorStream(true).start();
            Await.until("fio to write", () -> d.stat("disk0", "writes") > 100);
            assertEquals(0, d.stop(), "SIGTERM with requests in flight on the rings: " + d.log());
            writer.waitFor();
            assertTrue(d.log().contains("closed cleanly"), d.log());
        } finally {
            d.close();
        }
        Shell.sh("cmp " + data + " <(dd if=" + dir.resolve("disk0.img") + " bs=1M skip=8 count=4 status=none)").ok();
        try (MountedDaemon again = mount(config, dir.resolve("mnt"), "io_uring")) {
            Shell.sh("dd if=" + data + " of=" + again.disk("disk0") + " bs=1M seek=16 conv=notrunc,fsync status=none").ok();
            assertTrue(again.kill9(), "auto_unmount removes the mount of a killed daemon");
        }
        Shell.sh("cmp " + data + " <(dd if=" + dir.resolve("disk0.img") + " bs=1M skip=16 count=4 status=none)").ok();
    }

    @Test
    void anIoErrorBelowIsAnsweredThroughTheRing() throws Exception {
        Files.writeString(FuseUring.ENABLE_URING, "Y");
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"create": [{"filename": "b.img", "format": "raw", "size": "8M"}],
                 "blockdev": [{"driver": "blkdebug", "node-name": "bad", "file": {"driver": "file", "filename": "b.img"},
                               "inject-error": [{"iotype": "read", "offset": "1M", "length": "4K"}]},
                              {"driver": "raw", "node-name": "b", "file": "bad"}],
                 "exports": [{"id": "flaky", "node-name": "b", "writable": true}]}
                """);
        try (MountedDaemon d = mount(config, dir.resolve("mnt"), "io_uring")) {
            Shell.Result bad = Shell.sh("dd if=" + d.disk("flaky") + " of=/dev/null bs=4k skip=256 count=1 iflag=direct"
                    + " status=none");
            assertNotEquals(0, bad.exitCode());
            assertTrue(bad.stderr().contains("Input/output error"), bad.stderr());
            Shell.sh("dd if=" + d.disk("flaky") + " of=/dev/null bs=4k count=256 iflag=direct status=none").ok();
            assertEquals(0, d.unmount(), d.log());
            assertTrue(SERVED.matcher(d.log()).find(), d.log());
        }
    }

    @Test
    void aKernelThatSaysNoGetsDevFuse() throws Exception {
        Files.writeString(FuseUring.ENABLE_URING, "N");
        Path config = FioVerifyMountTest.singleDiskConfig(dir, "raw");
        Path mnt = dir.resolve("mnt");
        byte[] data = new byte[1 << 20];
        new java.util.Random(7).nextBytes(data);
        Path src = dir.resolve("src");
        Files.write(src, data);
        try (MountedDaemon d = mount(config, mnt, "io_uring")) {
            Shell.run("dd", "if=" + src, "of=" + d.disk("disk0"), "bs=64k", "oflag=direct", "conv=notrunc,fsync",
                    "status=none").ok();
            Shell.run("cmp", "-n", String.valueOf(data.length), src.toString(), d.disk("disk0").toString()).ok();
            assertEquals(0, d.unmount(), d.log());
            String log = d.log();
            assertTrue(log.contains("FUSE over io_uring was asked for, but the fuse module's enable_uring is N;"
                    + " serving /dev/fuse"), log);
            assertFalse(SERVED.matcher(log).find(), log);
        }
    }

    private static MountedDaemon mount(Path config, Path mnt, String option) {
        return MountedDaemon.start(List.of("mount", "-v", "-o", option, config.toString(), mnt.toString()),
                Map.of(), mnt);
    }
}
