package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A real file system on our disk: mkfs.ext4 on a loop device, files, fstrim, e2fsck. */
class Ext4OnLoopTest {
    @TempDir
    Path dir;

    @Test
    void ext4OnTheDiskChecksClean() throws Exception {
        Shell.requireTool("mkfs.ext4");
        Shell.requireTool("losetup");
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "disk0.img", "format": "raw", "size": "256M"}],
                 "blockdev": [{"driver": "raw", "node-name": "r0",
                               "file": {"driver": "file", "filename": "disk0.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """);
        Path fsdir = dir.resolve("ext4");
        Files.createDirectories(fsdir);
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            String loop = sh("losetup -f --show " + d.disk("disk0")).ok().stdout().trim();
            try {
                sh("mkfs.ext4 -q -F " + loop).ok();
                sh("mount " + loop + " " + fsdir).ok();
                try {
                    sh("head -c 20M /dev/urandom > " + fsdir.resolve("a") + " && cp " + fsdir.resolve("a") + " "
                            + fsdir.resolve("b") + " && mkdir " + fsdir.resolve("d") + " && sync").ok();
                    sh("cmp " + fsdir.resolve("a") + " " + fsdir.resolve("b")).ok();
                    sh("rm " + fsdir.resolve("b") + " && fstrim " + fsdir).ok();
                } finally {
                    sh("umount " + fsdir).ok();
                }
                Shell.Result fsck = sh("e2fsck -fn " + loop);
                assertEquals(0, fsck.exitCode(), fsck.stdout() + fsck.stderr());
            } finally {
                sh("losetup -d " + loop);
            }
            String stats = Files.readString(d.control("disk0/stats"));
            assertTrue(stats.matches("(?s).*discards [1-9].*"), "fstrim reached the disk as discards: " + stats);
        }
        long allocated = Files.readAttributes(dir.resolve("disk0.img"), java.nio.file.attribute.PosixFileAttributes.class)
                .size();
        assertEquals(256L << 20, allocated);
        long used = Long.parseLong(sh("du -B1 " + dir.resolve("disk0.img") + " | cut -f1").ok().stdout().trim());
        assertTrue(used < 100L << 20, "trimmed space is given back to the host: " + used + " bytes used");
    }
}
