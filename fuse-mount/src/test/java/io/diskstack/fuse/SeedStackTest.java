package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * The seed's stack from one config, {@code throttle → quorum → 3 × FORMAT → 3 × file}, with a
 * real file system on it: mkfs.ext4, files, e2fsck; then the three images hold the same bytes
 * (and qcow2 images check clean).
 */
class SeedStackTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"raw", "qcow2"})
    void ext4OnThrottledQuorumChecksClean(String format) throws Exception {
        Shell.requireTool("mkfs.ext4");
        Shell.requireTool("losetup");
        Shell.requireTool("qemu-img");
        StringBuilder children = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            Shell.run("qemu-img", "create", "-q", "-f", format, dir.resolve("c" + i + "." + format).toString(), "128M")
                    .ok();
            children.append(i == 0 ? "" : ",\n").append("{\"driver\": \"").append(format).append("\", \"node-name\": \"img")
                    .append(i).append("\", \"file\": {\"driver\": \"file\", \"filename\": \"c").append(i).append('.')
                    .append(format).append("\"}}");
        }
        Files.writeString(dir.resolve("config.json"), """
                {"objects": [{"qom-type": "throttle-group", "id": "tg0",
                              "limits": {"bps-total": 104857600, "iops-total": 20000}}],
                 "blockdev": [%s,
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "img1", "img2"]},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "q0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """.formatted(children));
        Path fsdir = dir.resolve("ext4");
        Files.createDirectories(fsdir);
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            String graph = Files.readString(d.control("graph"));
            assertTrue(graph.contains("t0  throttle") && graph.contains("q0  quorum"), graph);
            String loop = sh("losetup -f --show " + d.disk("disk0")).ok().stdout().trim();
            try {
                sh("mkfs.ext4 -q -F " + loop).ok();
                sh("mount " + loop + " " + fsdir).ok();
                try {
                    sh("head -c 8M /dev/urandom > " + fsdir.resolve("a") + " && cp " + fsdir.resolve("a") + " "
                            + fsdir.resolve("b") + " && mkdir " + fsdir.resolve("d") + " && sync").ok();
                    sh("cmp " + fsdir.resolve("a") + " " + fsdir.resolve("b")).ok();
                } finally {
                    sh("umount " + fsdir).ok();
                }
                Shell.Result fsck = sh("e2fsck -fn " + loop);
                assertEquals(0, fsck.exitCode(), fsck.stdout() + fsck.stderr());
            } finally {
                sh("losetup -d " + loop);
            }
            String stats = Files.readString(d.control("disk0/stats"));
            assertTrue(stats.contains("q0.children.0.errors 0") && stats.contains("q0.children.2.mismatches 0"), stats);
            assertEquals(0, d.stop());
        }
        String[] images = {"c0." + format, "c1." + format, "c2." + format};
        if (format.equals("qcow2")) {
            for (String image : images) {
                Shell.run("qemu-img", "check", "-q", dir.resolve(image).toString()).ok();
            }
        }
        Shell.run("qemu-img", "compare", "-q", "-f", format, "-F", format, dir.resolve(images[0]).toString(),
                dir.resolve(images[1]).toString()).ok();
        Shell.run("qemu-img", "compare", "-q", "-f", format, "-F", format, dir.resolve(images[0]).toString(),
                dir.resolve(images[2]).toString()).ok();
    }
}
