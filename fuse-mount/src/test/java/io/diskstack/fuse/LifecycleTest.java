package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Await;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Starting and stopping: the default example, SIGTERM under load, fusermount -u, I/O errors below. */
class LifecycleTest {
    @TempDir
    Path dir;

    private Path rawConfig(String size) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, """
                {"create": [{"filename": "disk0.img", "format": "raw", "size": "%s"}],
                 "blockdev": [{"driver": "raw", "node-name": "r0",
                               "file": {"driver": "file", "filename": "disk0.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """.formatted(size));
        return cfg;
    }

    @Test
    void theDefaultExampleMountsAOneGibibyteDiskFromTheStateFolder() throws Exception {
        Path state = dir.resolve("state");
        Path mnt = dir.resolve("mnt");
        try (MountedDaemon d = MountedDaemon.start(List.of("mount", mnt.toString()),
                Map.of("DISKSTACK_STATE_DIR", state.toString()), mnt)) {
            assertEquals(1L << 30, Files.size(d.disk("disk0")));
            assertEquals(1L << 30, Files.size(state.resolve("default/disk0.img")));
            assertTrue(Files.exists(state.resolve("default/config.json")));
            sh("printf hello | dd of=" + d.disk("disk0") + " conv=notrunc,fsync status=none").ok();
            assertEquals(0, d.stop());
        }
        try (var in = Files.newInputStream(state.resolve("default/disk0.img"))) {
            assertEquals("hello", new String(in.readNBytes(5), java.nio.charset.StandardCharsets.US_ASCII));
        }
    }

    @Test
    void sigtermWhileWritingKeepsWhatWasFsynced() throws Exception {
        Path data = dir.resolve("synced.bin");
        sh("head -c 4M /dev/urandom > " + data).ok();
        MountedDaemon d = MountedDaemon.mount(rawConfig("512M"), dir.resolve("mnt"));
        try {
            sh("dd if=" + data + " of=" + d.disk("disk0") + " bs=1M seek=100 conv=notrunc,fsync status=none").ok();
            Process writer = new ProcessBuilder("dd", "if=/dev/urandom", "of=" + d.disk("disk0"), "bs=1M", "seek=200", "count=300",
                    "conv=notrunc", "status=none").redirectErrorStream(true).start();
            Await.until("dd to write", () -> d.stat("disk0", "writes") > 0);
            assertEquals(0, d.stop(), "SIGTERM drains, flushes, closes and exits 0: " + d.log());
            writer.waitFor();
            assertTrue(d.log().contains("closed cleanly"), d.log());
        } finally {
            d.close();
        }
        sh("cmp " + data + " <(dd if=" + dir.resolve("disk0.img") + " bs=1M skip=100 count=4 status=none)").ok();
    }

    @Test
    void killNineKeepsWhatWasFsyncedAndLeavesNoDeadMount() throws Exception {
        Path data = dir.resolve("synced.bin");
        sh("head -c 2M /dev/urandom > " + data).ok();
        try (MountedDaemon d = MountedDaemon.mount(rawConfig("64M"), dir.resolve("mnt"))) {
            sh("dd if=" + data + " of=" + d.disk("disk0") + " bs=64k seek=16 conv=notrunc,fsync status=none").ok();
            assertTrue(d.kill9(), "auto_unmount removes the mount of a killed daemon");
        }
        sh("cmp " + data + " <(dd if=" + dir.resolve("disk0.img") + " bs=64k skip=16 count=32 status=none)").ok();
        try (MountedDaemon again = MountedDaemon.mount(rawConfig("64M"), dir.resolve("mnt"))) {
            sh("cmp " + data + " <(dd if=" + again.disk("disk0") + " bs=64k skip=16 count=32 status=none)").ok();
        }
    }

    @Test
    void fusermountUnmountEndsTheDaemonWithZero() throws Exception {
        try (MountedDaemon d = MountedDaemon.mount(rawConfig("16M"), dir.resolve("mnt"))) {
            assertEquals(0, d.unmount());
        }
    }

    @Test
    void anIoErrorBelowFailsOnlyThatRequest() throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, """
                {"create": [{"filename": "a.img", "format": "raw", "size": "8M"},
                            {"filename": "b.img", "format": "raw", "size": "8M"}],
                 "blockdev": [{"driver": "raw", "node-name": "a", "file": {"driver": "file", "filename": "a.img"}},
                              {"driver": "blkdebug", "node-name": "bad", "file": {"driver": "file", "filename": "b.img"},
                               "inject-error": [{"iotype": "read", "offset": "1M", "length": "4K"}]},
                              {"driver": "raw", "node-name": "b", "file": "bad"}],
                 "exports": [{"id": "good", "node-name": "a", "writable": true},
                             {"id": "flaky", "node-name": "b", "writable": true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(cfg, dir.resolve("mnt"))) {
            Shell.Result bad = sh("dd if=" + d.disk("flaky") + " of=/dev/null bs=4k skip=256 count=1 iflag=direct status=none");
            assertNotEquals(0, bad.exitCode());
            assertTrue(bad.stderr().contains("Input/output error"), bad.stderr());
            sh("dd if=" + d.disk("flaky") + " of=/dev/null bs=4k count=256 iflag=direct status=none").ok();
            sh("dd if=/dev/urandom of=" + d.disk("good") + " bs=1M count=4 conv=notrunc,fsync status=none").ok();
            String stats = Files.readString(d.control("flaky/stats"));
            assertTrue(stats.contains("errors 1\n"), stats);
            assertTrue(d.log().contains("blkdebug 'bad': injected EIO on read at 1048576"), d.log());
            assertEquals(0, d.stop());
        }
    }
}
