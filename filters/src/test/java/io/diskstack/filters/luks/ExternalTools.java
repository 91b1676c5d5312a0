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

    /**
     * Runs a command that sometimes fails for reasons of the machine, such as qemu-img's
     * "Unable to get accurate CPU usage" while it times PBKDF2: up to three tries.
     */
    static String okWithRetry(Path dir, String... cmd) throws IOException, InterruptedException {
        Result r = null;
        for (int i = 0; i < 3; i++) {
            r = run(dir, List.of(cmd));
            if (r.exit() == 0) {
                return r.output();
            }
        }
        fail(String.join(" ", cmd) + " failed three times:\n" + r.output());
        return null;
    }
}
