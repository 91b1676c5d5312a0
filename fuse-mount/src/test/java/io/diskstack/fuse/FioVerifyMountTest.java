package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.fuse.testing.SeedStack;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * fio's own check of what a guest writes: random 4 KiB O_DIRECT writes at queue depth 32 from
 * two jobs at once (each in its own half of the disk, so that neither overwrites what the other
 * will verify), every block carrying a crc32c that fio reads back and checks; then the same
 * blocks once more after a remount, from the image. Writers run in parallel on one file here
 * (FOPEN_PARALLEL_DIRECT_WRITES), so this is where a lost or torn concurrent write shows.
 */
class FioVerifyMountTest {
    private static final String HALF = "16M";

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"raw", "qcow2", "seed"})
    void concurrentRandomWritesVerify(String stack) throws Exception {
        Shell.requireTool("fio");
        Shell.requireTool("qemu-img");
        Path config = config(stack);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            verifiedFio(d.disk("disk0"), false);
            assertEquals(0, d.unmount(), d.log());
        }
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            verifiedFio(d.disk("disk0"), true);
        }
        if (stack.equals("seed")) {
            // quorum writes every child: the three images must still hold the same bytes
            for (int i = 1; i < 3; i++) {
                Shell.run("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2",
                        dir.resolve("c0.qcow2").toString(), dir.resolve("c" + i + ".qcow2").toString()).ok();
            }
        }
    }

    private Path config(String stack) throws Exception {
        return stack.equals("seed") ? SeedStack.create(dir, "32M") : singleDiskConfig(dir, stack);
    }

    /** {@code dir/config.json}: one writable 32 MiB disk0 in a new image of {@code format}. */
    static Path singleDiskConfig(Path dir, String format) throws Exception {
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"create": [{"filename": "disk0.img", "format": "%s", "size": "32M"}],
                 "blockdev": [{"driver": "%s", "node-name": "d0",
                               "file": {"driver": "file", "filename": "disk0.img"}}],
                 "exports": [{"id": "disk0", "node-name": "d0", "writable": true}]}
                """.formatted(format, format));
        return config;
    }

    /**
     * Writes and verifies (or, with {@code verifyOnly}, verifies what the same job wrote before)
     * the first 32 MiB of {@code disk}.
     */
    static void verifiedFio(Path disk, boolean verifyOnly) {
        List<String> fio = new ArrayList<>(List.of("fio", "--name=guest", "--filename=" + disk,
                "--rw=randwrite", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=32",
                "--numjobs=2", "--size=" + HALF, "--offset_increment=" + HALF,
                "--verify=crc32c", "--verify_fatal=1", "--randrepeat=1"));
        if (verifyOnly) {
            fio.add("--verify_only");
        }
        Shell.Result r = Shell.run(Duration.ofMinutes(3), null, fio);
        String out = r.stdout() + r.stderr();
        assertEquals(0, r.exitCode(), out);
        assertFalse(out.contains("verify:") || out.contains("bad magic") || out.contains("crc32c: verify failed"), out);
        assertEquals(2, out.split("err= 0:").length - 1, "both jobs finish without error: " + out);
    }
}
