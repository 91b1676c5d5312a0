package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code MNT/.snapshots/DISK/NAME} is the disk as it was at snapshot NAME, through the nodes
 * above the snapshot points: on the seed's stack ({@code throttle → luks → quorum → 3 × qcow2})
 * a view is plaintext of the disk's size, equal to a copy of the disk taken right before the
 * snapshot, internal and external alike; more writes and a remount change nothing. The same over
 * a node the core knows only by its shape (the test driver {@code pair}, two qcow2 children).
 */
class SnapshotViewMountTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Shell.requireTool("qemu-img");
    }

    private Path random(String name, String size) {
        Path p = dir.resolve(name);
        sh("head -c " + size + " /dev/urandom > " + p).ok();
        return p;
    }

    private static void dd(Path from, Path disk, int seekMiB) {
        sh("dd if=" + from + " of=" + disk + " bs=1M seek=" + seekMiB + " conv=notrunc,fsync status=none").ok();
    }

    /** A copy of the whole disk as it is now. */
    private Path copyOf(Path disk, String name) {
        Path copy = dir.resolve(name);
        sh("dd if=" + disk + " of=" + copy + " bs=1M iflag=direct status=none").ok();
        return copy;
    }

    private static void assertShowsCopy(MountedDaemon d, String snapshot, Path copy) {
        Path view = d.mountpoint().resolve(".snapshots/disk0").resolve(snapshot);
        assertEquals(sh("stat -c %s " + d.disk("disk0")).ok().stdout(), sh("stat -c %s " + view).ok().stdout(),
                snapshot + " has the disk's size");
        sh("cmp " + copy + " " + view).ok();
    }

    private static void refused(MountedDaemon d, String control, String name, String message) throws Exception {
        Shell.Result r = sh("echo " + name + " > " + d.control("disk0/" + control));
        assertNotEquals(0, r.exitCode());
        assertTrue(r.stderr().contains("File exists"), r.stderr());
        assertEquals(control + ": " + message + "\n", Files.readString(d.control("disk0/last-error")));
    }

    @Test
    void seedStackViewsArePlaintextOfTheDiskAsItWas() throws Exception {
        Files.writeString(dir.resolve("key.txt"), "view passphrase");
        Shell.Result created = MountedDaemon.runToCompletion(List.of("create", "-f", "luks", "--object",
                "secret,id=s0,file=" + dir.resolve("key.txt"), "-o", "key-secret=s0,iter-time=10",
                dir.resolve("volume.luks").toString(), "16M"), Map.of());
        assertEquals(0, created.exitCode(), created.stderr());
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", dir.resolve("volume.luks").toString(),
                    dir.resolve("c" + i + ".qcow2").toString()).ok();
        }
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"objects": [{"qom-type": "secret", "id": "s0", "file": "key.txt"},
                             {"qom-type": "throttle-group", "id": "tg0", "limits": {"bps-total": 209715200}}],
                 "blockdev": [
                   {"driver": "qcow2", "node-name": "img0", "file": {"driver": "file", "filename": "c0.qcow2"}},
                   {"driver": "qcow2", "node-name": "img1", "file": {"driver": "file", "filename": "c1.qcow2"}},
                   {"driver": "qcow2", "node-name": "img2", "file": {"driver": "file", "filename": "c2.qcow2"}},
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "img1", "img2"]},
                   {"driver": "luks", "node-name": "l0", "file": "q0", "key-secret": "s0"},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "l0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """);
        Path a = random("a.bin", "2M");
        Path b = random("b.bin", "1M");
        Path c = random("c.bin", "1M");
        Path atInternal;
        Path atExternal;
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            dd(a, disk, 0);
            atInternal = copyOf(disk, "at-internal.raw");
            sh("echo snapI > " + d.control("disk0/snapshot-internal")).ok();
            dd(b, disk, 1);
            atExternal = copyOf(disk, "at-external.raw");
            sh("echo snapE > " + d.control("disk0/snapshot-external")).ok();
            dd(c, disk, 0);
            assertEquals("snapE\nsnapI\n", sh("ls " + d.mountpoint().resolve(".snapshots/disk0")).ok().stdout());
            assertShowsCopy(d, "snapI", atInternal);
            assertShowsCopy(d, "snapE", atExternal);
            assertNotEquals(0, sh("cmp -s " + atExternal + " " + disk).exitCode(), "the disk moved on");

            // one name, one view: a name the other kind has is refused
            refused(d, "snapshot-external", "snapI", "export 'disk0' has an internal snapshot 'snapI' already "
                    + "(in node 'img0' (" + dir.resolve("c0.qcow2") + "))");
            refused(d, "snapshot-internal", "snapE", "export 'disk0' has an external snapshot 'snapE' already");

            dd(b, disk, 3);
            assertShowsCopy(d, "snapI", atInternal);
            assertShowsCopy(d, "snapE", atExternal);
            assertEquals(0, d.unmount());
        }
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            assertEquals("snapE\nsnapI\n", sh("ls " + d.mountpoint().resolve(".snapshots/disk0")).ok().stdout());
            assertShowsCopy(d, "snapI", atInternal);
            assertShowsCopy(d, "snapE", atExternal);
            assertEquals(0, d.unmount());
        }
    }

    /**
     * qemu-img can give an image an internal snapshot with an external snapshot's name while the
     * disk is not mounted: the external one keeps the name, the internal one shows under its id.
     */
    @Test
    void anInternalSnapshotNamedLikeAnExternalOneShowsUnderItsId() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("a.qcow2").toString(), "4M").ok();
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "qcow2", "node-name": "q0", "file": {"driver": "file", "filename": "a.qcow2"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true}]}
                """);
        Path atExternal;
        Path atInternal;
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            dd(random("a.bin", "1M"), d.disk("disk0"), 0);
            atExternal = copyOf(d.disk("disk0"), "at-external.raw");
            sh("echo s1 > " + d.control("disk0/snapshot-external")).ok();
            dd(random("b.bin", "1M"), d.disk("disk0"), 0);
            atInternal = copyOf(d.disk("disk0"), "at-internal.raw");
            assertEquals(0, d.unmount());
        }
        run("qemu-img", "snapshot", "-c", "s1", dir.resolve("a-s1.qcow2").toString()).ok();
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            assertEquals("1\ns1\n", sh("ls " + d.mountpoint().resolve(".snapshots/disk0")).ok().stdout());
            assertShowsCopy(d, "s1", atExternal);
            assertShowsCopy(d, "1", atInternal);
            assertEquals(0, d.unmount());
        }
    }

    @Test
    void viewsOverAFanOutNodeShowThePairDiskAsItWas() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("meta.qcow2").toString(), "64K").ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("data.qcow2").toString(), "4M").ok();
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "m0", "file": {"driver": "file", "filename": "meta.qcow2"}},
                   {"driver": "qcow2", "node-name": "d0", "file": {"driver": "file", "filename": "data.qcow2"}},
                   {"driver": "pair", "node-name": "p0", "metadata": "m0", "data": "d0"}],
                 "exports": [{"id": "disk0", "node-name": "p0", "writable": true}]}
                """);
        Path a = random("a.bin", "2M");
        Path b = random("b.bin", "1M");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            dd(a, disk, 1);
            Path atInternal = copyOf(disk, "at-internal.raw");
            sh("echo s1 > " + d.control("disk0/snapshot-internal")).ok();
            dd(b, disk, 0);
            Path atExternal = copyOf(disk, "at-external.raw");
            sh("echo s2 > " + d.control("disk0/snapshot-external")).ok();
            dd(b, disk, 3);
            dd(a, disk, 2);
            assertShowsCopy(d, "s1", atInternal);
            assertShowsCopy(d, "s2", atExternal);
            assertEquals(0, d.unmount());
        }
    }
}
