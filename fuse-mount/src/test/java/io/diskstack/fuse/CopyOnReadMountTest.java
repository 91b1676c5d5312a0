package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * copy-on-read through the mount over qcow2 overlays made with qemu-img: reads copy the clusters
 * they touch into the overlay ({@code qemu-img map} shows them at depth 0), nothing else moves,
 * the content stays the same and {@code qemu-img check} is clean. With {@code bottom}, data below
 * the bottom node stays where it is.
 */
class CopyOnReadMountTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    private String img(String name) {
        return dir.resolve(name).toString();
    }

    /** Per guest offset range [start, start+length), the depth qemu-img map reports (-1: unallocated). */
    private static int depthAt(JsonNode map, long offset) {
        for (JsonNode e : map) {
            long start = e.get("start").asLong();
            if (offset >= start && offset < start + e.get("length").asLong()) {
                return e.get("data").asBoolean() || e.get("zero").asBoolean() ? e.get("depth").asInt() : -1;
            }
        }
        throw new AssertionError("offset " + offset + " not in map " + map);
    }

    private JsonNode map(String image) throws Exception {
        String json = run("qemu-img", "map", "--output=json", img(image)).ok().stdout();
        return new ObjectMapper().readTree(json);
    }

    @Test
    void readsThroughTheMountCopyClustersIntoTheOverlay() throws Exception {
        Shell.requireTool("qemu-img");
        Shell.requireTool("qemu-io");
        run("qemu-img", "create", "-q", "-f", "qcow2", img("base.qcow2"), "64M").ok();
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 4M", "-c", "write -P 0xa5 16M 2M",
                "-c", "write -P 0x33 40M 1M", img("base.qcow2")).ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", img("top.qcow2")).ok();
        Files.writeString(dir.resolve("config.json"), """
                {"blockdev": [{"driver": "qcow2", "node-name": "top", "file": {"driver": "file", "filename": "top.qcow2"}},
                              {"driver": "copy-on-read", "node-name": "cor", "file": "top"}],
                 "exports": [{"id": "disk0", "node-name": "cor", "writable": true}]}
                """);
        sh("head -c 4M /dev/zero | tr '\\0' '\\132' > " + dir.resolve("p5a")).ok();
        sh("head -c 1M /dev/zero | tr '\\0' '\\245' > " + dir.resolve("pa5")).ok();
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            sh("cmp " + dir.resolve("p5a") + " <(dd if=" + disk + " bs=1M count=4 iflag=direct status=none)").ok();
            sh("cmp " + dir.resolve("pa5") + " <(dd if=" + disk + " bs=1M skip=16 count=1 iflag=direct status=none)")
                    .ok();
            sh("dd if=" + disk + " of=/dev/null bs=64k skip=512 count=4 iflag=direct status=none").ok();
            assertEquals(0, d.stop());
        }
        JsonNode top = map("top.qcow2");
        for (long off = 0; off < 4 * MIB; off += 64 * 1024) {
            assertEquals(0, depthAt(top, off), "read range at " + off + " is in the overlay now: " + top);
        }
        assertEquals(0, depthAt(top, 16 * MIB));
        assertEquals(1, depthAt(top, 17 * MIB), "the unread half of the base's 2 MiB stays in the base");
        assertEquals(0, depthAt(top, 32 * MIB), "zero clusters that were read are copied as zeroes");
        assertEquals(1, depthAt(top, 40 * MIB), "unread data stays in the base");
        run("qemu-img", "check", "-q", img("top.qcow2")).ok();
        run("qemu-img", "check", "-q", img("base.qcow2")).ok();
        run("qemu-img", "compare", "-q", img("top.qcow2"), img("base.qcow2")).ok();
        String io = run("qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 4M", "-c", "read -P 0xa5 16M 2M",
                "-c", "read -P 0x33 40M 1M", img("top.qcow2")).ok().stdout();
        assertTrue(!io.contains("Pattern verification failed"), io);
    }

    @Test
    void bottomLeavesDataBelowItInTheBase() throws Exception {
        Shell.requireTool("qemu-img");
        Shell.requireTool("qemu-io");
        run("qemu-img", "create", "-q", "-f", "qcow2", img("base.qcow2"), "16M").ok();
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 8M", img("base.qcow2")).ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", img("mid.qcow2")).ok();
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 2M", img("mid.qcow2")).ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", img("top.qcow2")).ok();
        Files.writeString(dir.resolve("config.json"), """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "base", "read-only": true,
                    "file": {"driver": "file", "filename": "base.qcow2"}},
                   {"driver": "qcow2", "node-name": "mid", "read-only": true, "backing": "base",
                    "file": {"driver": "file", "filename": "mid.qcow2"}},
                   {"driver": "qcow2", "node-name": "top", "backing": "mid",
                    "file": {"driver": "file", "filename": "top.qcow2"}},
                   {"driver": "copy-on-read", "node-name": "cor", "file": "top", "bottom": "mid"}],
                 "exports": [{"id": "disk0", "node-name": "cor", "writable": true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            sh("dd if=" + d.disk("disk0") + " of=/dev/null bs=1M count=8 iflag=direct status=none").ok();
            assertEquals(0, d.stop());
        }
        JsonNode top = map("top.qcow2");
        assertEquals(0, depthAt(top, 0), "mid's data was copied up");
        assertEquals(0, depthAt(top, 2 * MIB - 1));
        assertEquals(2, depthAt(top, 2 * MIB), "base's data, below the bottom, was not: " + top);
        assertEquals(2, depthAt(top, 8 * MIB - 1));
        run("qemu-img", "check", "-q", img("top.qcow2")).ok();
        String io = run("qemu-io", "-f", "qcow2", "-c", "read -P 0x22 0 2M", "-c", "read -P 0x11 2M 6M",
                img("top.qcow2")).ok().stdout();
        assertTrue(!io.contains("Pattern verification failed"), io);
    }
}
