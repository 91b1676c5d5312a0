package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The seed's first use case from one config: {@code throttle → luks → quorum → 3 × qcow2 →
 * 3 × file}. Luks sits above quorum, so it encrypts once and every qcow2 image holds the same
 * ciphertext; no plaintext reaches any image; QEMU, stacking its own luks driver on one of the
 * qcow2 images, reads back what was written through the mount; and the data survives a remount.
 */
class EncryptedSeedStackTest {
    private static final String MARKER = "DISKSTACK-SEED-PLAINTEXT ";

    @TempDir
    Path dir;

    @Test
    void encryptedQuorumOfQcow2HoldsOnlyCiphertextAndReadsBack() throws Exception {
        Shell.requireTool("qemu-img");
        Files.writeString(dir.resolve("key.txt"), "seed stack passphrase");
        // A LUKS1 volume made by us, copied into three qcow2 images: the quorum's children.
        Shell.Result created = MountedDaemon.runToCompletion(List.of("create", "-f", "luks", "--object",
                "secret,id=s0,file=" + dir.resolve("key.txt"), "-o", "key-secret=s0,iter-time=10",
                dir.resolve("volume.luks").toString(), "64M"), java.util.Map.of());
        assertEquals(0, created.exitCode(), created.stderr());
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", dir.resolve("volume.luks").toString(),
                    dir.resolve("c" + i + ".qcow2").toString()).ok();
        }
        Files.writeString(dir.resolve("config.json"), """
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
        Path plaintext = dir.resolve("plaintext.bin");
        byte[] text = MARKER.repeat((1 << 20) / MARKER.length() + 1).getBytes(StandardCharsets.US_ASCII);
        Files.write(plaintext, java.util.Arrays.copyOf(text, 1 << 20));
        long size = Files.size(plaintext);
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            String graph = Files.readString(d.control("graph"));
            assertTrue(graph.contains("t0  throttle") && graph.contains("l0  luks") && graph.contains("q0  quorum"), graph);
            assertTrue(!graph.contains("seed stack passphrase"), "no key material in the graph");
            sh("dd if=" + plaintext + " of=" + d.disk("disk0") + " bs=64k seek=128 conv=notrunc,fsync status=none").ok();
            sh("cmp " + plaintext + " <(dd if=" + d.disk("disk0") + " bs=64k skip=128 count=" + size / 65536
                    + " status=none)").ok();
            assertEquals(0, d.stop());
        }
        for (int i = 0; i < 3; i++) {
            Path image = dir.resolve("c" + i + ".qcow2");
            run("qemu-img", "check", "-q", image.toString()).ok();
            assertEquals(1, sh("grep -c -a -F '" + MARKER + "' " + image).exitCode(),
                    "plaintext found in " + image);
        }
        run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", dir.resolve("c0.qcow2").toString(),
                dir.resolve("c1.qcow2").toString()).ok();
        run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", dir.resolve("c0.qcow2").toString(),
                dir.resolve("c2.qcow2").toString()).ok();
        // QEMU decrypts one child with its own luks-over-qcow2 stack and finds what we wrote.
        Path decrypted = dir.resolve("decrypted.raw");
        run("qemu-img", "convert", "--object", "secret,id=s0,file=" + dir.resolve("key.txt"), "--image-opts",
                "driver=luks,key-secret=s0,file.driver=qcow2,file.file.driver=file,file.file.filename="
                        + dir.resolve("c1.qcow2"), "-O", "raw", decrypted.toString()).ok();
        sh("cmp " + plaintext + " <(dd if=" + decrypted + " bs=64k skip=128 count=" + size / 65536 + " status=none)").ok();
        try (MountedDaemon again = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            sh("cmp " + plaintext + " <(dd if=" + again.disk("disk0") + " bs=64k skip=128 count=" + size / 65536
                    + " status=none)").ok();
        }
    }
}
