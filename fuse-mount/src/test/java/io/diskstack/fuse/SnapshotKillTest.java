package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A kill -9 right after a snapshot's control-file write returned, with a write acknowledged by
 * an fsync in between: the config the mount left opens, with the snapshot in it, and every write
 * acknowledged before the kill is there. (A snapshot makes its overlays and the new config before
 * it holds the guest's I/O, and only renames the config and swaps the nodes while it does.)
 */
class SnapshotKillTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    Path before;
    Path after;
    Path expected;

    @BeforeEach
    void data() throws Exception {
        Shell.requireTool("qemu-img");
        before = dir.resolve("before.bin");
        after = dir.resolve("after.bin");
        expected = dir.resolve("expected.bin");
        sh("head -c 4M /dev/urandom > " + before + " && head -c 1M /dev/urandom > " + after).ok();
        sh("cp " + before + " " + expected + " && dd if=" + after + " of=" + expected
                + " bs=1M seek=2 conv=notrunc status=none").ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("a.qcow2").toString(), "4M").ok();
        Files.writeString(dir.resolve("config.json"), """
                {"objects": [{"qom-type": "throttle-group", "id": "tg0"}],
                 "blockdev": [{"driver": "qcow2", "node-name": "q0", "file": {"driver": "file", "filename": "a.qcow2"}},
                              {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "q0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """);
    }

    /** Writes {@code before}, takes the snapshot, writes {@code after} over its third MiB, then kill -9. */
    private void snapshotThenKill(String kind) {
        MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
        try {
            sh("dd if=" + before + " of=" + d.disk("disk0") + " bs=1M conv=notrunc,fsync status=none").ok();
            sh("echo s1 > " + d.control("disk0/snapshot-" + kind) + " && dd if=" + after + " of=" + d.disk("disk0")
                    + " bs=1M seek=2 conv=notrunc,fsync status=none").ok();
            assertTrue(d.kill9(), "the killed mount goes away");
        } finally {
            d.close();
        }
    }

    /** qemu-img finds no corruption (leaked clusters, which a kill may leave, are allowed). */
    private static void checkImage(Path image) {
        Shell.Result check = run("qemu-img", "check", image.toString());
        assertTrue(check.exitCode() == 0 || check.exitCode() == 3, image + ": " + check.stdout() + check.stderr());
    }

    @Test
    void externalSnapshotKilledRightAfter() throws Exception {
        snapshotThenKill("external");
        JsonNode config = JSON.readTree(dir.resolve("config.json").toFile());
        JsonNode throttle = null;
        for (JsonNode n : config.get("blockdev")) {
            throttle = n.get("node-name").asText().equals("t0") ? n : throttle;
        }
        assertEquals("q0-s1", throttle.get("file").asText(), config.toString());
        checkImage(dir.resolve("a.qcow2"));
        checkImage(dir.resolve("a-s1.qcow2"));
        try (MountedDaemon again = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            String graph = Files.readString(again.control("graph"));
            assertTrue(graph.contains("file: q0-s1  qcow2") && graph.contains("backing: q0  qcow2"), graph);
            sh("cmp " + expected + " " + again.disk("disk0")).ok();
            assertEquals(0, again.unmount());
        }
        // the base holds what the disk was at the snapshot
        Path base = dir.resolve("base.raw");
        run("qemu-img", "convert", "-O", "raw", dir.resolve("a.qcow2").toString(), base.toString()).ok();
        sh("cmp " + before + " " + base).ok();
    }

    @Test
    void internalSnapshotKilledRightAfter() throws Exception {
        snapshotThenKill("internal");
        Path img = dir.resolve("a.qcow2");
        checkImage(img);
        assertTrue(run("qemu-img", "snapshot", "-l", img.toString()).ok().stdout().contains(" s1 "));
        Path s1 = dir.resolve("s1.raw");
        run("qemu-img", "convert", "-l", "snapshot.name=s1", "-O", "raw", img.toString(), s1.toString()).ok();
        sh("cmp " + before + " " + s1).ok();
        try (MountedDaemon again = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            sh("cmp " + expected + " " + again.disk("disk0")).ok();
            sh("cmp " + before + " " + again.mountpoint().resolve(".snapshots/disk0/s1")).ok();
            assertEquals(0, again.unmount());
        }
    }
}
