package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two qcow2 nodes over one file would each keep their own tables and lose each other's writes:
 * the mount refuses that config with one line naming both users, and writes nothing; two raw
 * exports over one file still work (raw shares, as in QEMU).
 */
class PermissionsMountTest {
    @TempDir
    Path dir;

    @Test
    void twoQcow2NodesOverOneFileAreRefusedAndNothingIsWritten() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("a.qcow2").toString(), "16M").ok();
        byte[] before = Files.readAllBytes(dir.resolve("a.qcow2"));
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev":[{"driver":"file","node-name":"f0","filename":"a.qcow2"},{"driver":"qcow2","node-name":"q0","file":"f0"},
                             {"driver":"qcow2","node-name":"q1","file":"f0"}],
                 "exports":[{"id":"disk0","node-name":"q0","writable":true},{"id":"disk1","node-name":"q1","writable":true}]}
                """);
        Files.createDirectories(dir.resolve("mnt"));
        Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", config.toString(),
                dir.resolve("mnt").toString()), Map.of());
        assertEquals(2, r.exitCode(), r.stderr());
        assertEquals("diskstack: blockdev 'q1' (qcow2): 'file' f0 is already written by 'q0' (qcow2), which does not "
                + "share write\n", r.stderr());
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("a.qcow2")), "nothing was written");
    }

    @Test
    void twoRawExportsOverOneFileStillWork() throws Exception {
        run("qemu-img", "create", "-q", "-f", "raw", dir.resolve("a.img").toString(), "16M").ok();
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev":[{"driver":"file","node-name":"f0","filename":"a.img"},{"driver":"raw","node-name":"r0","file":"f0"},
                             {"driver":"raw","node-name":"r1","file":"f0"}],
                 "exports":[{"id":"disk0","node-name":"r0","writable":true},{"id":"disk1","node-name":"r1","writable":true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Shell.sh("printf hello | dd of=" + d.disk("disk0") + " conv=notrunc,fsync status=none").ok();
            assertTrue(Shell.sh("head -c 5 " + d.disk("disk1")).ok().stdout().equals("hello"));
            assertEquals(0, d.unmount());
        }
    }
}
