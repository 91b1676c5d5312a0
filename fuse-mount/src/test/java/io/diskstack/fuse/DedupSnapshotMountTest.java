package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.InProcessCli.Outcome;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Snapshots below a dedup disk whose children are qcow2 images: an internal snapshot lands in
 * both images at once (qemu-img lists it in each), taken after writes nobody flushed, so the
 * dedup node's metadata had to be written into the images first; a revert brings the disk back
 * (the node reads its children again); an external snapshot puts overlays on both; the views
 * show the dedup'ed disk as it was; qemu-img check and diskstack check find every image clean.
 */
class DedupSnapshotMountTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Shell.requireTool("qemu-img");
    }

    private static String child(String key, Path image) {
        return key + ".driver=qcow2," + key + ".file.driver=file," + key + ".file.filename=" + image;
    }

    private Path copyOf(Path disk, String name) {
        Path copy = dir.resolve(name);
        sh("dd if=" + disk + " of=" + copy + " bs=1M iflag=direct status=none").ok();
        return copy;
    }

    /** Writes without fsync: what reaches the images before a snapshot is the snapshot's business. */
    private static void write(Path from, Path disk, int seekMiB) {
        sh("dd if=" + from + " of=" + disk + " bs=1M seek=" + seekMiB + " conv=notrunc status=none").ok();
    }

    @Test
    void snapshotsBelowDedupLandInBothChildrenAndViewsShowTheDiskAsItWas() throws Exception {
        Path meta = dir.resolve("meta.qcow2");
        Path data = dir.resolve("data.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", meta.toString(), "64M").ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", data.toString(), "32M").ok();
        Outcome r = diskstack("create", "-f", "dedup", "-o", child("metadata", meta) + "," + child("data", data), "32M");
        assertEquals(0, r.code(), r.err());
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "m0", "file": {"driver": "file", "filename": "meta.qcow2"}},
                   {"driver": "qcow2", "node-name": "d0", "file": {"driver": "file", "filename": "data.qcow2"}},
                   {"driver": "dedup", "node-name": "dd0", "metadata": "m0", "data": "d0"}],
                 "exports": [{"id": "disk0", "node-name": "dd0", "writable": true}]}
                """);
        Path a = dir.resolve("a.bin");
        Path b = dir.resolve("b.bin");
        sh("head -c 3M /dev/urandom > " + a + " && head -c 2M /dev/urandom > " + b).ok();
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            Path ctl = d.control("disk0");
            Path views = d.mountpoint().resolve(".snapshots/disk0");
            write(a, disk, 0);
            write(a, disk, 8);
            Path atS1 = copyOf(disk, "at-s1.raw");
            sh("echo s1 > " + ctl.resolve("snapshot-internal")).ok();
            for (Path image : new Path[] {meta, data}) {
                String list = run("qemu-img", "snapshot", "-U", "-l", image.toString()).ok().stdout();
                assertTrue(list.matches("(?s).*\\n1 +s1 .*"), image + ": " + list);
            }
            write(b, disk, 1);
            sh("cmp " + atS1 + " " + views.resolve("s1")).ok();

            // revert: the images go back, and the dedup node with them
            sh("echo s1 > " + ctl.resolve("snapshot-revert")).ok();
            sh("cmp " + atS1 + " " + disk).ok();

            write(b, disk, 20);
            Path atS2 = copyOf(disk, "at-s2.raw");
            sh("echo s2 > " + ctl.resolve("snapshot-external")).ok();
            assertTrue(Files.exists(dir.resolve("meta-s2.qcow2")) && Files.exists(dir.resolve("data-s2.qcow2")),
                    "an overlay on each child");
            write(a, disk, 4);
            write(b, disk, 28);
            sh("cmp " + atS1 + " " + views.resolve("s1")).ok();
            sh("cmp " + atS2 + " " + views.resolve("s2")).ok();
            Path now = copyOf(disk, "now.raw");
            assertEquals(0, d.unmount());

            try (MountedDaemon again = MountedDaemon.mount(config, dir.resolve("mnt"))) {
                sh("cmp " + now + " " + again.disk("disk0")).ok();
                sh("cmp " + atS2 + " " + again.mountpoint().resolve(".snapshots/disk0/s2")).ok();
                assertEquals(0, again.unmount());
            }
        }
        for (String image : new String[] {"meta.qcow2", "data.qcow2", "meta-s2.qcow2", "data-s2.qcow2"}) {
            run("qemu-img", "check", "-q", dir.resolve(image).toString()).ok();
        }
        r = diskstack("check", "-f", "dedup", "-o", child("metadata", dir.resolve("meta-s2.qcow2")) + ","
                + child("data", dir.resolve("data-s2.qcow2")));
        assertEquals(0, r.code(), r.out() + r.err());
    }
}
