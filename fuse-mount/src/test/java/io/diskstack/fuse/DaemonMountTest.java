package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.fuse.testing.NotifySocket;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mount as a system tool runs it: {@code --daemonize} and {@code --pidfile} (as
 * qemu-storage-daemon), the form mount.fuse runs ({@code diskstack CONFIG MNT -o OPTIONS}), and
 * systemd's notify protocol over a socket of the test's own.
 */
class DaemonMountTest {
    @TempDir
    Path dir;

    private Path config() throws Exception {
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "file", "node-name": "f0", "filename": "a.qcow2"},
                              {"driver": "qcow2", "node-name": "q0", "file": "f0"}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true}],
                 "create": [{"filename": "a.qcow2", "format": "qcow2", "size": "32M"}]}
                """);
        return config;
    }

    private static ProcessHandle daemonOf(Path pidfile) throws Exception {
        long pid = Long.parseLong(Files.readString(pidfile).strip());
        return ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("no process " + pid));
    }

    /** The image was closed cleanly: qcow2's dirty bit is clear, and qemu-img may take its write lock. */
    private void imageClosedCleanly() {
        Shell.Result info = Shell.run("qemu-img", "info", "--output=json", dir.resolve("a.qcow2").toString()).ok();
        assertTrue(info.stdout().contains("\"dirty-flag\": false"), info.stdout());
        Shell.run("qemu-img", "check", dir.resolve("a.qcow2").toString()).ok();
    }

    @Test
    void daemonizeReturnsOnceTheDiskAnswersAndThePidFileNamesTheDaemon() throws Exception {
        Path mnt = dir.resolve("mnt");
        Path pidfile = dir.resolve("run/d.pid");
        Files.createDirectories(pidfile.getParent());
        Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", "--daemonize", "--pidfile", pidfile.toString(),
                config().toString(), mnt.toString()), Map.of());
        try {
            assertEquals(0, r.exitCode(), r.stderr());
            assertEquals("", r.stderr());
            assertTrue(MountedDaemon.isMounted(mnt), "mounted when the command returns");
            ProcessHandle daemon = daemonOf(pidfile);
            assertTrue(daemon.isAlive());
            assertEquals(List.of(), Files.list(pidfile.getParent()).filter(p -> !p.equals(pidfile)).toList(),
                    "no temporary pid file left");
            Shell.run("dd", "if=/dev/urandom", "of=" + mnt.resolve("disk0"), "bs=64k", "count=16", "conv=fsync,notrunc",
                    "status=none").ok();
            daemon.destroy(); // SIGTERM
            assertTrue(daemon.onExit().get(60, TimeUnit.SECONDS) != null);
            assertFalse(Files.exists(pidfile), "the pid file goes with the daemon");
            assertFalse(MountedDaemon.isMounted(mnt));
            imageClosedCleanly();
        } finally {
            if (MountedDaemon.isMounted(mnt)) {
                Shell.run("fusermount", "-u", "-z", mnt.toString());
            }
        }
    }

    @Test
    void aBadConfigFailsTheCommandWithItsOneLineAndNoPidFile() throws Exception {
        Path config = dir.resolve("bad.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "raw", "node-name": "r0", "file": "f9"}],
                 "exports": [{"id": "disk0", "node-name": "r0"}]}
                """);
        Path pidfile = dir.resolve("d.pid");
        Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", "--daemonize", "--pidfile", pidfile.toString(),
                config.toString(), dir.resolve("mnt").toString()), Map.of());
        assertEquals(2, r.exitCode());
        assertEquals("diskstack: blockdev 'r0' (raw): 'file' refers to unknown node 'f9'\n", r.stderr());
        assertFalse(Files.exists(pidfile));
        assertFalse(MountedDaemon.isMounted(dir.resolve("mnt")));
    }

    /** What mount.fuse runs: {@code diskstack CONFIG MNT -o OPTIONS}, with options only mount(8) knows. */
    @Test
    void theMountHelperFormDaemonizesAndUmountStopsIt() throws Exception {
        Path mnt = dir.resolve("mnt");
        Path config = config();
        Shell.Result r = MountedDaemon.runToCompletion(List.of(config.toString(), mnt.toString(), "-o",
                "rw,nofail,noauto,_netdev,x-systemd.automount,dev,suid,nosuid"), Map.of());
        try {
            assertEquals(0, r.exitCode(), r.stderr());
            String line = Files.readAllLines(Path.of("/proc/mounts")).stream()
                    .filter(l -> l.contains(" " + mnt + " ")).findFirst().orElseThrow();
            assertTrue(line.startsWith(config + " " + mnt + " fuse.diskstack rw,nosuid"), line);
            try (InputStream in = Files.newInputStream(mnt.resolve("disk0"))) {
                assertEquals(4096, in.readNBytes(4096).length);
            }
            ProcessHandle daemon = ProcessHandle.allProcesses()
                    .filter(p -> p.info().arguments().map(a -> List.of(a).contains("--daemon-child")
                            && List.of(a).contains(mnt.toString())).orElse(false))
                    .findFirst().orElseThrow(() -> new AssertionError("no daemon for " + mnt));
            Shell.run("umount", mnt.toString()).ok();
            assertTrue(daemon.onExit().get(60, TimeUnit.SECONDS) != null);
            imageClosedCleanly();
        } finally {
            if (MountedDaemon.isMounted(mnt)) {
                Shell.run("fusermount", "-u", "-z", mnt.toString());
            }
        }
    }

    @Test
    void notifiesSystemdWhenTheDiskIsReadableAndWhenStopping() throws Exception {
        for (String address : List.of(dir.resolve("notify").toString(), "@diskstack-test-" + ProcessHandle.current().pid())) {
            Path mnt = dir.resolve("mnt");
            try (NotifySocket socket = new NotifySocket(address);
                 MountedDaemon d = MountedDaemon.launch(List.of("mount", config().toString(), mnt.toString()),
                         Map.of("NOTIFY_SOCKET", address), mnt)) {
                String ready = socket.receive(60);
                assertNotNull(ready, "READY=1 within 60 s: " + d.log());
                // nothing is waited for here: the disk must be readable the moment READY=1 arrives
                try (InputStream in = Files.newInputStream(mnt.resolve("disk0"))) {
                    assertEquals(4096, in.readNBytes(4096).length);
                }
                assertTrue(ready.startsWith("READY=1\n"), ready);
                assertTrue(ready.contains("STATUS=serving 1 disk at " + mnt), ready);
                d.awaitMounted();
                ProcessHandle.of(d.pid()).orElseThrow().destroy(); // SIGTERM
                String stopping = socket.receive(60);
                assertNotNull(stopping, "STOPPING=1 after SIGTERM: " + d.log());
                assertTrue(stopping.startsWith("STOPPING=1\n"), stopping);
                assertEquals(0, d.awaitExit(), d.log());
                assertEquals(null, socket.receive(1), "nothing after STOPPING=1");
            }
        }
    }
}
