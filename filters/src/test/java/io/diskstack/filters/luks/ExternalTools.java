package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs qemu-img, qemu-io and cryptsetup. A missing tool skips the test, except under CI=true,
 * where it fails: CI must have them. Passphrases reach them only through files.
 */
final class ExternalTools {
    private ExternalTools() {}

    static void require(String tool) {
        io.diskstack.core.testing.Shell.requireTool(tool);
    }

    record Result(int exit, String output) {}

    static Result run(Path dir, List<String> cmd) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().put("PATH", System.getenv().getOrDefault("PATH", "") + ":/usr/sbin:/sbin");
        Process p = pb.start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(String.join(" ", cmd) + " timed out");
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    /** Runs a command that must succeed, and returns its output. */
    static String ok(Path dir, String... cmd) throws IOException, InterruptedException {
        Result r = run(dir, List.of(cmd));
        assertEquals(0, r.exit(), String.join(" ", cmd) + " failed:\n" + r.output());
        return r.output();
    }

    /** What QEMU 7.2 prints when it times PBKDF2 and the thread's user CPU time reads 0 ms. */
    static final String CPU_USAGE_FLAKE = "Unable to get accurate CPU usage";

    /**
     * Runs qemu-img create -f luks (or any command that times PBKDF2): qemu-img 7.2 fails
     * about one run in five here with {@link #CPU_USAGE_FLAKE}, so that one failure is retried
     * up to ten times; any other failure fails at once.
     */
    static String okWithRetry(Path dir, String... cmd) throws IOException, InterruptedException {
        Result r = null;
        for (int i = 0; i < 10; i++) {
            r = run(dir, List.of(cmd));
            if (r.exit() == 0) {
                return r.output();
            }
            if (!r.output().contains(CPU_USAGE_FLAKE)) {
                break;
            }
        }
        fail(String.join(" ", cmd) + " failed:\n" + r.output());
        return null;
    }
}
