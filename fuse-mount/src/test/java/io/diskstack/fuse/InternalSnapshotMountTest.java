package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Internal snapshots of a qcow2 disk through {@code .control/DISK/snapshot-*} and
 * {@code .snapshots/DISK/}, checked with cmp and the real qemu-img: one taken by qemu-img before
 * mounting shows; one taken in the mount holds the old content and qemu-img lists it after; revert
 * refuses while the disk is open, then works; delete removes it; bad names, a raw-only export and
 * a read-only export are refused with their errno and a message in last-error.
 */
class InternalSnapshotMountTest {
    @TempDir
    Path dir;

    private Path a;
    private Path b;

    @Test
    void snapshotsThroughControlFilesAndSnapshotFiles() throws Exception {
        Shell.requireTool("qemu-img");
        Shell.requireTool("qemu-io");
        Path img = dir.resolve("a.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", img.toString(), "4M").ok();
        sh("qemu-io -f qcow2 -c 'write -q -P 0x5a 0 1M' " + img).ok();
        run("qemu-img", "snapshot", "-c", "pre", img.toString()).ok();
        Path pre = dir.resolve("pre.raw");
        run("qemu-img", "convert", "-O", "raw", img.toString(), pre.toString()).ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("ro.qcow2").toString(), "1M").ok();
        sh("truncate -s 1M " + dir.resolve("r.img")).ok();
        a = dir.resolve("a.raw");
        b = dir.resolve("b.raw");
        sh("head -c 4M /dev/urandom > " + a + " && head -c 4M /dev/urandom > " + b).ok();
        Files.writeString(dir.resolve("config.json"), """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "q0", "file": {"driver": "file", "filename": "a.qcow2"}},
                   {"driver": "qcow2", "node-name": "q1", "file": {"driver": "file", "filename": "ro.qcow2"}},
                   {"driver": "raw", "node-name": "r2", "file": {"driver": "file", "node-name": "f2", "filename": "r.img"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true},
                             {"id": "disk1", "node-name": "q1", "writable": false},
                             {"id": "disk2", "node-name": "r2", "writable": true}]}
                """);
        String listing;
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            Path snaps = d.mountpoint().resolve(".snapshots/disk0");
            Path ctl = d.control("disk0");
            assertEquals(".control\n.snapshots\ndisk0\ndisk1\ndisk2\n",
                    sh("LC_ALL=C ls -A " + d.mountpoint()).ok().stdout());

            // a snapshot qemu-img took before mounting
            assertEquals("pre\n", sh("ls " + snaps).ok().stdout());
            sh("cmp " + pre + " " + snaps.resolve("pre")).ok();

            // take one, write over it, read both
            write(a, disk);
            sh("echo s1 > " + ctl.resolve("snapshot-internal")).ok();
            write(b, disk);
            sh("cmp " + a + " " + snaps.resolve("s1")).ok();
            sh("cmp " + b + " " + disk).ok();
            assertEquals("400 4194304\n", sh("stat -c '%a %s' " + snaps.resolve("s1")).ok().stdout());
            assertNotEquals(0, sh("echo x >> " + snaps.resolve("s1")).exitCode(), "snapshot files are read-only");
            sh("echo s2 > " + ctl.resolve("snapshot-internal")).ok();
            assertEquals("pre\ns1\ns2\n", sh("ls " + snaps).ok().stdout());

            // refusals: errno for the writer, message in last-error
            refused("echo s1 > " + ctl.resolve("snapshot-internal"), "File exists", d, "disk0",
                    "snapshot-internal: node 'q0' (" + img + ") has a snapshot named 's1' already");
            refused("echo 1 > " + ctl.resolve("snapshot-internal"), "File exists", d, "disk0",
                    "snapshot-internal: node 'q0' (" + img + ") has a snapshot with id '1' already");
            refused("echo nope > " + ctl.resolve("snapshot-delete"), "No such file or directory", d, "disk0",
                    "snapshot-delete: no snapshot 'nope' in node 'q0' (" + img + ")");
            refused("echo a/b > " + ctl.resolve("snapshot-internal"), "Invalid argument", d, "disk0",
                    "snapshot-internal: snapshot name 'a/b' must not contain '/'");
            refused("printf 'a\\tb\\n' > " + ctl.resolve("snapshot-internal"), "Invalid argument", d, "disk0",
                    "snapshot-internal: snapshot name 'a\\x09b' must not contain control characters");
            refused("echo > " + ctl.resolve("snapshot-internal"), "Invalid argument", d, "disk0",
                    "snapshot-internal: a snapshot needs a name");

            // revert: refused while the disk is open, then the disk reads the snapshot
            refused("exec 3<" + disk + "; echo s1 > " + ctl.resolve("snapshot-revert") + "; rc=$?; exec 3<&-; "
                    + "exit $rc", "Device or resource busy", d, "disk0", "snapshot-revert: disk 'disk0' is open "
                    + "(1 handle): close it first, as a revert changes its content under it");
            sh("cmp " + b + " " + disk).ok();
            sh("echo s1 > " + ctl.resolve("snapshot-revert")).ok();
            sh("cmp " + a + " " + disk).ok();
            sh("cmp " + b + " " + snaps.resolve("s2")).ok();

            // delete
            sh("echo s2 > " + ctl.resolve("snapshot-delete")).ok();
            assertEquals("pre\ns1\n", sh("ls " + snaps).ok().stdout());
            assertNotEquals(0, sh("cat " + snaps.resolve("s2") + " > /dev/null").exitCode());
            listing = Files.readString(ctl.resolve("snapshot-internal"));
            assertTrue(listing.startsWith("Snapshot list:\nID        TAG               VM SIZE                DATE"
                    + "     VM CLOCK     ICOUNT\n1         pre "), listing);
            assertFalse(listing.contains("s2"), listing);

            // no snapshot node below a raw export; a read-only export
            refused("echo x > " + d.control("disk2/snapshot-internal"), "Invalid argument", d, "disk2",
                    "snapshot-internal: no node below 'r2' supports internal snapshots (the walk ends at 'f2' "
                            + "(file))");
            assertEquals("", sh("ls " + d.mountpoint().resolve(".snapshots/disk2")).ok().stdout());
            assertEquals("no node below 'r2' supports internal snapshots (the walk ends at 'f2' (file))\n",
                    Files.readString(d.control("disk2/snapshot-internal")));
            refused("echo x > " + d.control("disk1/snapshot-internal"), "Read-only file system", d, "disk1",
                    "snapshot-internal: export 'disk1' is read-only");
            assertEquals(0, d.unmount());
        }
        Shell.Result list = run("qemu-img", "snapshot", "-l", img.toString()).ok();
        assertEquals(listing, list.stdout(), "the mount lists snapshots as qemu-img does");
        assertTrue(list.stdout().contains(" s1 ") && !list.stdout().contains(" s2 "), list.stdout());
        Shell.Result check = run("qemu-img", "check", img.toString());
        assertEquals(0, check.exitCode(), check.stdout() + check.stderr());
        Path s1 = dir.resolve("s1.raw");
        run("qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", img.toString(), s1.toString()).ok();
        sh("cmp " + a + " " + s1).ok();
        Path now = dir.resolve("now.raw");
        run("qemu-img", "convert", "-O", "raw", img.toString(), now.toString()).ok();
        sh("cmp " + a + " " + now).ok();
    }

    private static void write(Path from, Path disk) {
        sh("dd if=" + from + " of=" + disk + " bs=1M conv=notrunc,fsync status=none").ok();
    }

    /** The command fails with that errno text, and last-error of the disk's folder says {@code message}. */
    private static void refused(String script, String errnoText, MountedDaemon d, String disk, String message)
            throws Exception {
        Shell.Result r = sh(script);
        assertNotEquals(0, r.exitCode(), script);
        assertTrue(r.stderr().contains(errnoText), script + ": " + r.stderr());
        assertEquals(message + "\n", Files.readString(d.control(disk + "/last-error")), script);
    }
}
