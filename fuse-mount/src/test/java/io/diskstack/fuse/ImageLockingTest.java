package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU's image locking, both ways: QEMU's tools refuse an image we have mounted writable, we
 * refuse an image QEMU has open for writing, and read-only users (a shared backing file) get
 * along.
 */
class ImageLockingTest {
    @TempDir
    Path dir;

    private Path config(String name, String image, boolean writable) throws Exception {
        Path c = dir.resolve(name);
        Files.writeString(c, """
                {"blockdev": [{"driver": "qcow2", "node-name": "q0", "read-only": %s,
                               "file": {"driver": "file", "filename": "%s"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": %s}]}
                """.formatted(!writable, image, writable));
        return c;
    }

    @Test
    void qemuToolsRefuseAnImageWeHaveMounted() throws Exception {
        Shell.requireTool("qemu-img");
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("a.qcow2").toString(), "16M").ok();
        try (MountedDaemon d = MountedDaemon.mount(config("c.json", "a.qcow2", true), dir.resolve("mnt"))) {
            Shell.Result info = run("qemu-img", "info", dir.resolve("a.qcow2").toString());
            assertNotEquals(0, info.exitCode(), info.stdout());
            assertTrue(info.stderr().contains("Failed to get shared \"write\" lock"), info.stderr());
            run("qemu-img", "info", "-U", dir.resolve("a.qcow2").toString()).ok();
            Shell.Result write = run("qemu-io", "-c", "write 0 4k", dir.resolve("a.qcow2").toString());
            assertTrue(write.stderr().contains("lock"), "qemu-io must not write a mounted image: " + write.stderr());
            Shell.Result check = MountedDaemon.runToCompletion(List.of("check", dir.resolve("a.qcow2").toString()), Map.of());
            assertEquals(1, check.exitCode(), "as qemu-img check, an image it cannot open: " + check.stderr());
            assertTrue(check.stderr().contains("is in use"), check.stderr());
        }
        run("qemu-img", "check", dir.resolve("a.qcow2").toString()).ok();
    }

    @Test
    void weRefuseAnImageQemuHasOpenForWriting() throws Exception {
        Shell.requireTool("qemu-storage-daemon");
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("b.qcow2").toString(), "16M").ok();
        // qsd writes its pid file once its nodes are open (and the image locked); polling with
        // qemu-img info instead could take a lock at the moment qsd asks for its own and make it fail
        Path pid = dir.resolve("qsd.pid");
        Process qsd = new ProcessBuilder("qemu-storage-daemon", "--pidfile", pid.toString(), "--blockdev",
                "driver=file,node-name=f,filename=" + dir.resolve("b.qcow2"), "--blockdev", "driver=qcow2,node-name=q,file=f")
                .redirectErrorStream(true).start();
        try {
            Await.until("qemu-storage-daemon to open b.qcow2", () -> Files.exists(pid) || !qsd.isAlive());
            if (!qsd.isAlive()) {
                fail("qemu-storage-daemon exited: " + new String(qsd.getInputStream().readAllBytes()));
            }
            assertTrue(run("qemu-img", "info", dir.resolve("b.qcow2").toString()).stderr().contains("lock"),
                    "qemu-storage-daemon holds the image's lock");
            Shell.Result mount = MountedDaemon.runToCompletion(List.of("mount",
                    config("c.json", "b.qcow2", true).toString(), dir.resolve("mnt").toString()), Map.of());
            assertEquals(2, mount.exitCode(), mount.stderr());
            assertTrue(mount.stderr().contains("blockdev '#q0.file' (file): 'filename' '" + dir.resolve("b.qcow2")
                    + "' is in use"), mount.stderr());
            assertEquals(1, mount.stderr().lines().count(), mount.stderr());
        } finally {
            qsd.destroy();
            qsd.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void readOnlyUsersShareAnImage() throws Exception {
        Shell.requireTool("qemu-img");
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("base.qcow2").toString(), "16M").ok();
        try (MountedDaemon one = MountedDaemon.mount(config("one.json", "base.qcow2", false), dir.resolve("m1"));
             MountedDaemon two = MountedDaemon.mount(config("two.json", "base.qcow2", false), dir.resolve("m2"))) {
            run("qemu-img", "info", dir.resolve("base.qcow2").toString()).ok();
            assertTrue(Files.size(one.disk("disk0")) == Files.size(two.disk("disk0")));
        }
    }
}
