package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU's system emulator opens our disk as a raw drive, with the page cache and with
 * cache=none (O_DIRECT), and its own block layer writes and reads patterns through it (HMP
 * qemu-io over QMP; no guest needed).
 */
class QemuSystemTest {
    @TempDir
    Path dir;

    @Test
    void qemuSystemUsesTheDiskWithAndWithoutCacheNone() throws Exception {
        Shell.requireTool("qemu-system-x86_64");
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "disk0.img", "format": "raw", "size": "32M"}],
                 "blockdev": [{"driver": "raw", "node-name": "r0", "file": {"driver": "file", "filename": "disk0.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            for (String cache : List.of("writeback", "none")) {
                int pattern = cache.equals("none") ? 0x5a : 0x42;
                String qmp = "{\"execute\":\"qmp_capabilities\"}\n"
                        + hmp("qemu-io d0 \\\"write -P " + pattern + " 1M 256k\\\"")
                        + hmp("qemu-io d0 \\\"read -P " + pattern + " 1M 256k\\\"")
                        + "{\"execute\":\"quit\"}\n";
                Path input = dir.resolve("qmp-" + cache);
                Files.writeString(input, qmp);
                String out = Shell.run(Duration.ofMinutes(1), dir, List.of("bash", "-c",
                        "qemu-system-x86_64 -M none -nodefaults -display none -qmp stdio -drive file=" + d.disk("disk0")
                                + ",format=raw,if=none,id=d0,cache=" + cache + " < " + input)).ok().stdout();
                assertTrue(out.contains("read 262144/262144 bytes at offset 1048576"), cache + ": " + out);
                assertFalse(out.contains("Pattern verification failed"), cache + ": " + out);
                String image = Shell.run("qemu-io", "-r", "-U", "-f", "raw", "-c", "read -P " + pattern + " 1M 256k",
                        dir.resolve("disk0.img").toString()).ok().stdout();
                assertFalse(image.contains("Pattern verification failed"), "image file: " + image);
            }
        }
    }

    private static String hmp(String command) {
        return "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"" + command + "\"}}\n";
    }
}
