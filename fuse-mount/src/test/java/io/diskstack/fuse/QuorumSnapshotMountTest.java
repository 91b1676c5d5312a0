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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Internal snapshots of the seed's stack, {@code throttle → quorum → 3 × qcow2}: one name lands
 * in all three images, and its file in {@code .snapshots} reads the next image where the first
 * fails (blkdebug fails reads of some of img0's data clusters). And all or nothing: when one child's image fails the create (blkdebug fails
 * writes past its end, where the snapshot's tables would go), the two already taken are deleted
 * again and no image keeps the snapshot.
 */
class QuorumSnapshotMountTest {
    @TempDir
    Path dir;

    private String qcow2(String nodeName, String image) {
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve(image).toString(), "4M").ok();
        return "{\"driver\": \"qcow2\", \"node-name\": \"" + nodeName + "\", \"file\": {\"driver\": \"file\", "
                + "\"filename\": \"" + image + "\"}}";
    }

    @Test
    void aSnapshotLandsInEveryQuorumChildOrInNone() throws Exception {
        Shell.requireTool("qemu-img");
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("c0.qcow2").toString(), "4M").ok();
        // New clusters go past the end: 1 MiB of them are A's data, whoever comes first (L2 or data).
        long dataAt = Files.size(dir.resolve("c0.qcow2")) + (1 << 20);
        String seed = "{\"driver\": \"qcow2\", \"node-name\": \"img0\", \"file\": {\"driver\": \"blkdebug\", "
                + "\"inject-error\": [{\"errno\": \"EIO\", \"iotype\": \"read\", \"offset\": " + dataAt
                + ", \"length\": 1048576}], \"file\": {\"driver\": \"file\", \"filename\": \"c0.qcow2\"}}},\n"
                + qcow2("img1", "c1.qcow2") + ",\n" + qcow2("img2", "c2.qcow2");
        String failing = qcow2("fimg0", "f0.qcow2") + ",\n" + qcow2("fimg1", "f1.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("f2.qcow2").toString(), "4M").ok();
        long end = Files.size(dir.resolve("f2.qcow2"));
        failing += ",\n{\"driver\": \"qcow2\", \"node-name\": \"fimg2\", \"file\": {\"driver\": \"blkdebug\", "
                + "\"inject-error\": [{\"errno\": \"EIO\", \"iotype\": \"write\", \"offset\": " + end + "}], "
                + "\"file\": {\"driver\": \"file\", \"filename\": \"f2.qcow2\"}}}";
        Files.writeString(dir.resolve("config.json"), """
                {"objects": [{"qom-type": "throttle-group", "id": "tg0",
                              "limits": {"bps-total": 104857600, "iops-total": 20000}}],
                 "blockdev": [%s,
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "img1", "img2"]},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "q0"},
                   %s,
                   {"driver": "quorum", "node-name": "q1", "vote-threshold": 2,
                    "children": ["fimg0", "fimg1", "fimg2"]}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true},
                             {"id": "disk1", "node-name": "q1", "writable": true}]}
                """.formatted(seed, failing));
        Path a = dir.resolve("a.raw");
        Path b = dir.resolve("b.raw");
        sh("head -c 4M /dev/urandom > " + a + " && head -c 4M /dev/urandom > " + b).ok();
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            Path snaps = d.mountpoint().resolve(".snapshots");
            sh("dd if=" + a + " of=" + disk + " bs=1M conv=notrunc,fsync status=none").ok();
            sh("cmp " + a + " " + disk).ok();
            String stats = Files.readString(d.control("disk0/stats"));
            assertTrue(stats.matches("(?s).*q0\\.children\\.0\\.errors [1-9].*"), "img0 fails reads of A: " + stats);
            sh("echo s1 > " + d.control("disk0/snapshot-internal")).ok();
            sh("dd if=" + b + " of=" + disk + " bs=1M conv=notrunc,fsync status=none").ok();
            sh("cmp " + a + " " + snaps.resolve("disk0/s1")).ok();
            sh("cmp " + b + " " + disk).ok();
            String listing = Files.readString(d.control("disk0/snapshot-internal"));
            for (int i = 0; i < 3; i++) {
                assertTrue(listing.contains("node 'img" + i + "' (" + dir.resolve("c" + i + ".qcow2") + "):\n"
                        + "Snapshot list:\n"), listing);
            }
            assertEquals(3, listing.split(" s1 ", -1).length - 1, listing);

            Shell.Result r = sh("echo s1 > " + d.control("disk1/snapshot-internal"));
            assertNotEquals(0, r.exitCode());
            assertTrue(r.stderr().contains("Input/output error"), r.stderr());
            String error = Files.readString(d.control("disk1/last-error"));
            assertTrue(error.startsWith("snapshot-internal: snapshot 's1' failed on node 'fimg2' ("), error);
            assertTrue(error.endsWith("; deleted it again from 'fimg0', 'fimg1'\n"), error);
            assertEquals("", sh("ls " + snaps.resolve("disk1")).ok().stdout());
            assertEquals(0, d.unmount());
        }
        for (int i = 0; i < 3; i++) {
            String image = dir.resolve("c" + i + ".qcow2").toString();
            assertTrue(run("qemu-img", "snapshot", "-l", image).ok().stdout().contains(" s1 "), image);
            run("qemu-img", "check", "-q", image).ok();
            Path s1 = dir.resolve("s1-" + i + ".raw");
            run("qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", image, s1.toString()).ok();
            sh("cmp " + a + " " + s1).ok();
        }
        for (int i = 0; i < 3; i++) {
            String image = dir.resolve("f" + i + ".qcow2").toString();
            assertEquals("", run("qemu-img", "snapshot", "-l", image).ok().stdout(), image);
        }
        run("qemu-img", "check", "-q", dir.resolve("f0.qcow2").toString()).ok();
        run("qemu-img", "check", "-q", dir.resolve("f1.qcow2").toString()).ok();
    }
}
