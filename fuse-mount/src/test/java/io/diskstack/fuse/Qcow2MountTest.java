package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** qcow2 through the mount: qemu-io patterns both ways, and a 3-deep backing chain. */
class Qcow2MountTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Shell.requireTool("qemu-img");
        Shell.requireTool("qemu-io");
    }

    private MountedDaemon mount(String image, boolean writable) throws Exception {
        Files.writeString(dir.resolve("config.json"), """
                {"blockdev": [{"driver": "qcow2", "node-name": "q0",
                               "file": {"driver": "file", "filename": "%s"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": %s}]}
                """.formatted(image, writable));
        return MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
    }

    private static void qemuIo(String format, Path file, String... commands) {
        StringBuilder cmd = new StringBuilder("qemu-io -f " + format);
        for (String c : commands) {
            cmd.append(" -c '").append(c).append("'");
        }
        cmd.append(" ").append(file);
        Shell.Result r = sh(cmd.toString()).ok();
        assertTrue(!r.stdout().contains("fail") && !r.stdout().contains("Pattern verification"),
                cmd + ": " + r.stdout());
    }

    @Test
    void qemuIoPatternsReadBackThroughTheMountAndTheOtherWayRound() throws Exception {
        Path img = dir.resolve("a.qcow2");
        run("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=16384", img.toString(), "64M").ok();
        qemuIo("qcow2", img, "write -P 0xa1 0 1M", "write -P 0xa2 5M 300k", "write -z 5100k 64k",
                "write -P 0xa3 63M 1M");
        run("qemu-img", "snapshot", "-c", "before", img.toString()).ok();
        try (MountedDaemon d = mount("a.qcow2", true)) {
            Path disk = d.disk("disk0");
            assertEquals(64L << 20, Files.size(disk));
            qemuIo("raw", disk, "read -P 0xa1 0 1M", "read -P 0 5100k 64k",
                    "read -P 0xa2 5164k 256k", "read -P 0xa3 63M 1M", "read -P 0 10M 1M");
            qemuIo("raw", disk, "write -P 0xb1 512k 1M", "write -P 0xb2 20M 4k", "write -P 0xb3 20M 512",
                    "write -z 63M 64k");
            sh("sync " + disk).ok();
            assertEquals(0, d.unmount());
        }
        qemuIo("qcow2", img, "read -P 0xa1 0 512k", "read -P 0xb1 512k 1M", "read -P 0xb3 20M 512",
                "read -P 0xb2 20972032 3584", "read -P 0 63M 64k", "read -P 0xa3 64576k 960k");
        Shell.Result check = run("qemu-img", "check", img.toString());
        assertEquals(0, check.exitCode(), check.stdout() + check.stderr());
        // the snapshot qemu-img took still holds the old content
        Path snap = dir.resolve("snap.raw");
        run("qemu-img", "convert", "-l", "snapshot.name=before", "-O", "raw", img.toString(), snap.toString()).ok();
        qemuIo("raw", snap, "read -P 0xa1 0 1M", "read -P 0 20M 4k");
    }

    @Test
    void aThreeDeepChainReadsLikeQemuImgConvert() throws Exception {
        Path base = dir.resolve("base.qcow2");
        run("qemu-img", "create", "-f", "qcow2", base.toString(), "32M").ok();
        qemuIo("qcow2", base, "write -P 0x01 0 16M");
        run("qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir.resolve("mid.qcow2").toString())
                .ok();
        qemuIo("qcow2", dir.resolve("mid.qcow2"), "write -P 0x02 4M 4M", "write -z 6M 1M");
        run("qemu-img", "create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", dir.resolve("top.qcow2").toString(),
                "48M").ok();
        qemuIo("qcow2", dir.resolve("top.qcow2"), "write -P 0x03 5M 2M", "write -P 0x04 40M 1M");
        Path expected = dir.resolve("top.raw");
        run("qemu-img", "convert", "-O", "raw", dir.resolve("top.qcow2").toString(), expected.toString()).ok();
        try (MountedDaemon d = mount("top.qcow2", false)) {
            sh("cmp " + expected + " " + d.disk("disk0")).ok();
            assertEquals(0, d.unmount());
        }
    }
}
