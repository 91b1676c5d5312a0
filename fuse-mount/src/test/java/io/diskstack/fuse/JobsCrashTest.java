package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kill -9} in the middle of a commit and of a mirror, at several points: the remount opens
 * the graph of before the job (its pivot was not recorded), every fsync'ed write reads back,
 * and no image is corrupt. A base the commit was writing may have leaked clusters (allocated,
 * not yet referenced: qcow2's safe order, as in QEMU); the next commit, which opens it writable,
 * repairs them, and then every image is clean.
 */
class JobsCrashTest {
    @TempDir
    Path dir;
    private Path config;
    private Path expected;

    /** A qcow2 disk with 32 MiB written, an external snapshot, 16 MiB written over it. */
    @BeforeEach
    void setUp() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("c.qcow2").toString(), "64M").ok();
        config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "qcow2", "node-name": "q0", "file": {"driver": "file", "filename": "c.qcow2"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true}]}
                """);
        expected = dir.resolve("expected.raw");
        sh("head -c 32M /dev/urandom > " + dir.resolve("a.bin") + " && head -c 16M /dev/urandom > "
                + dir.resolve("b.bin")).ok();
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("dd if=" + dir.resolve("a.bin") + " of=" + d.disk("disk0") + " bs=1M conv=notrunc,fsync status=none").ok();
            sh("echo s1 > " + d.control("disk0/snapshot-external")).ok();
            sh("dd if=" + dir.resolve("b.bin") + " of=" + d.disk("disk0") + " bs=1M conv=notrunc,fsync status=none").ok();
            sh("dd if=" + d.disk("disk0") + " of=" + expected + " bs=1M status=none").ok();
            assertEquals(0, d.unmount());
        }
    }

    private void killAfter(String controlFile, String command, long millis, String writeWhileReady) throws Exception {
        String before = Files.readString(config);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("echo '" + command + "' > " + d.control(controlFile)).ok();
            if (writeWhileReady != null) {
                Path status = d.control(writeWhileReady);
                long end = System.nanoTime() + 30_000_000_000L;
                while (!Files.readString(status).equals("ready\n")) {
                    assertTrue(System.nanoTime() < end, "the job never got ready");
                    Thread.sleep(20);
                }
                // a write the job has to catch up with; fsync'ed, so it must survive
                sh("head -c 1M /dev/urandom | dd of=" + d.disk("disk0") + " bs=1M seek=40 conv=notrunc,fsync "
                        + "status=none").ok();
                sh("dd if=" + d.disk("disk0") + " of=" + expected + " bs=1M status=none").ok();
            } else {
                Thread.sleep(millis);
            }
            d.kill9();
        }
        assertEquals(before, Files.readString(config), "the pivot was not recorded");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("cmp " + expected + " " + d.disk("disk0")).ok();
            assertEquals(0, d.unmount());
        }
        for (String image : List.of("c.qcow2", "c-s1.qcow2")) {
            Shell.Result check = run("qemu-img", "check", dir.resolve(image).toString());
            assertTrue(check.exitCode() == 0 || check.exitCode() == 3 && check.stdout().contains("no harm to data"),
                    image + ": " + check.stdout() + check.stderr());
        }
    }

    /** The commit, run to its end after the crashes: the images are clean and hold the data. */
    private void commitToTheEnd() throws Exception {
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("echo s1 > " + d.control("disk0/commit")).ok();
            Shell.Result waited = MountedDaemon.runToCompletion(List.of("job", "wait", d.mountpoint().toString(),
                    "commit-disk0"), java.util.Map.of());
            assertEquals(0, waited.exitCode(), waited.stderr());
            sh("cmp " + expected + " " + d.disk("disk0")).ok();
            assertEquals(0, d.unmount());
        }
        run("qemu-img", "check", dir.resolve("c.qcow2").toString()).ok();
        run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", dir.resolve("c.qcow2").toString(),
                expected.toString()).ok();
    }

    @Test
    void killedDuringACommit() throws Exception {
        killAfter("disk0/commit", "s1 speed=8M", 300, null);
        killAfter("disk0/commit", "s1 speed=8M", 1200, null);
        killAfter("disk0/commit", "s1 pivot=off", 0, "jobs/commit-disk0/status");
        commitToTheEnd();
    }

    @Test
    void killedDuringAMirror() throws Exception {
        killAfter("nodes/q0-s1/mirror", "target=m1.qcow2 format=qcow2 speed=16M", 500, null);
        killAfter("nodes/q0-s1/mirror", "target=m2.qcow2 format=qcow2 pivot=off", 0, "jobs/mirror-q0-s1/status");
        commitToTheEnd();
    }
}
