package io.diskstack.fuse.testing;

import static io.diskstack.core.testing.Shell.run;

import io.diskstack.core.testing.Shell;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The seed's stack in a folder: {@code throttle → luks → quorum → 3 × qcow2}, the three images
 * made from one LUKS volume (so they hold the same ciphertext), and a config naming every node.
 */
public final class SeedStack {
    public static final String KEY = "seed stack passphrase";

    private SeedStack() {}

    /** Makes key.txt, c0..c2.qcow2 and config.json in {@code dir} for a disk of {@code size} ("64M"). */
    public static Path create(Path dir, String size) throws IOException {
        Shell.requireTool("qemu-img");
        Files.writeString(dir.resolve("key.txt"), KEY);
        Shell.Result made = MountedDaemon.runToCompletion(List.of("create", "-f", "luks", "--object",
                "secret,id=s0,file=" + dir.resolve("key.txt"), "-o", "key-secret=s0,iter-time=10",
                dir.resolve("volume.luks").toString(), size), Map.of());
        if (made.exitCode() != 0) {
            throw new AssertionError("diskstack create: " + made.stderr());
        }
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", dir.resolve("volume.luks").toString(),
                    dir.resolve("c" + i + ".qcow2").toString()).ok();
        }
        Files.delete(dir.resolve("volume.luks"));
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"objects": [{"qom-type": "secret", "id": "s0", "file": "key.txt"},
                             {"qom-type": "throttle-group", "id": "tg0", "limits": {"iops-total": 100000}}],
                 "blockdev": [
                   {"driver": "qcow2", "node-name": "img0", "file": {"driver": "file", "filename": "c0.qcow2"}},
                   {"driver": "qcow2", "node-name": "img1", "file": {"driver": "file", "filename": "c1.qcow2"}},
                   {"driver": "qcow2", "node-name": "img2", "file": {"driver": "file", "filename": "c2.qcow2"}},
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "img1", "img2"]},
                   {"driver": "luks", "node-name": "l0", "file": "q0", "key-secret": "s0"},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "l0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """);
        return config;
    }

    /** What QEMU's own luks driver reads from one qcow2 image (its plaintext), as a raw file. */
    public static Path decryptWithQemu(Path dir, String image, Path out) {
        run("qemu-img", "convert", "--object", "secret,id=s0,file=" + dir.resolve("key.txt"), "--image-opts",
                "driver=luks,key-secret=s0,file.driver=qcow2,file.file.driver=file,file.file.filename="
                        + dir.resolve(image), "-O", "raw", out.toString()).ok();
        return out;
    }
}
