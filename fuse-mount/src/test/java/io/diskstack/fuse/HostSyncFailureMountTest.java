package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A failed sync of an image file fails every later flush of that image: after a failed fsync
 * the kernel may have dropped the pages it could not write and reports the error only once, so a
 * later fsync would succeed and acknowledge data that is gone. The image here lies on another
 * diskstack mount whose disk fails its first flush (blkdebug): a file system whose fsync really
 * fails once and then works, as a kernel's page cache would look.
 */
class HostSyncFailureMountTest {
    @TempDir
    Path dir;

    @Test
    void aFailedSyncFailsEveryLaterFlushUntilTheDiskIsMountedAgain() throws Exception {
        Files.writeString(dir.resolve("inner.json"), """
                {"create": [{"filename": "under.img", "format": "raw", "size": "8M"}],
                 "blockdev": [{"driver": "raw", "node-name": "r0", "file": {"driver": "blkdebug",
                               "inject-error": [{"errno": "EIO", "iotype": "flush", "once": true}],
                               "file": {"driver": "file", "filename": "under.img"}}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """);
        Path data = dir.resolve("x.bin");
        sh("head -c 1M /dev/urandom > " + data).ok();
        try (MountedDaemon inner = MountedDaemon.mount(dir.resolve("inner.json"), dir.resolve("inner"))) {
            Path outerConfig = dir.resolve("outer.json");
            Files.writeString(outerConfig, """
                    {"blockdev": [{"driver": "raw", "node-name": "r1",
                                   "file": {"driver": "file", "node-name": "f1", "filename": "%s"}}],
                     "exports": [{"id": "disk0", "node-name": "r1", "writable": true}]}
                    """.formatted(inner.disk("disk0")));
            String write = "dd if=" + data + " of=%s bs=1M conv=notrunc,fsync status=none";
            try (MountedDaemon outer = MountedDaemon.mount(outerConfig, dir.resolve("outer"))) {
                Path disk = outer.disk("disk0");
                Shell.Result first = sh(write.formatted(disk));
                assertNotEquals(0, first.exitCode(), "the image's fsync failed: so must the disk's");
                // the image's file system syncs again now; what it failed to write must not be acknowledged
                Shell.Result second = sh(write.formatted(disk));
                assertNotEquals(0, second.exitCode(), "a flush after a failed sync succeeded");
                assertNotEquals(0, sh("sync " + disk).exitCode());
                String log = outer.log();
                assertTrue(log.contains(inner.disk("disk0") + ": an earlier sync failed"), log);
                // a reopen writes the node back first: refused, with the graph as it was
                String graph = Files.readString(outer.control("graph"));
                assertNotEquals(0, sh("echo node-name=f1,detect-zeroes=on > " + outer.control("blockdev-reopen"))
                        .exitCode(), "a reopen of a file whose sync failed");
                assertTrue(Files.readString(outer.control("last-error")).contains("sync failed"),
                        Files.readString(outer.control("last-error")));
                assertEquals(graph, Files.readString(outer.control("graph")));
                // reads and writes go on; only flushes are refused
                sh("cmp " + data + " " + disk + " -n 1048576").ok();
                // its last flush fails too
                outer.unmount();
            }
            try (MountedDaemon outer = MountedDaemon.mount(outerConfig, dir.resolve("outer"))) {
                sh(write.formatted(outer.disk("disk0"))).ok();
                sh("cmp " + data + " " + outer.disk("disk0") + " -n 1048576").ok();
                assertEquals(0, outer.unmount());
            }
            sh("cmp " + data + " " + inner.disk("disk0") + " -n 1048576").ok();
            assertEquals(0, inner.unmount());
        }
    }
}
