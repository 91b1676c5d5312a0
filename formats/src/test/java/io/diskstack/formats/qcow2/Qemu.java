package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.fail;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The real qemu-img and qemu-io, for interop tests: missing tools fail the run under CI=true. */
final class Qemu {
    private Qemu() {}

    static void require() {
        io.diskstack.core.testing.Shell.requireTool("qemu-img");
        io.diskstack.core.testing.Shell.requireTool("qemu-io");
    }

    /** Runs a command; returns stdout; fails with stderr if it exits non-zero. */
    static String run(String... cmd) throws IOException {
        Result r = exec(cmd);
        if (r.exit != 0) {
            throw new AssertionError(String.join(" ", cmd) + " exited " + r.exit + ": " + r.err + r.out);
        }
        return r.out;
    }

    record Result(int exit, String out, String err) {}

    static Result exec(String... cmd) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(List.of(cmd));
        Path out = Files.createTempFile("qemu-out", ".txt");
        Path err = Files.createTempFile("qemu-err", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        try {
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(String.join(" ", cmd) + " timed out");
            }
            return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    static void img(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("qemu-img");
        cmd.addAll(List.of(args));
        run(cmd.toArray(new String[0]));
    }

    static void io(Path image, String... commands) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.toString());
        String out = run(cmd.toArray(new String[0]));
        if (out.contains("failed") || out.contains("Pattern verification failed")) {
            throw new AssertionError("qemu-io " + String.join("; ", commands) + ": " + out);
        }
    }

    /** The image's content as qemu-img convert -O raw sees it. */
    static byte[] raw(Path image) throws IOException {
        Path raw = image.resolveSibling(image.getFileName() + ".raw");
        Files.deleteIfExists(raw);
        img("convert", "-O", "raw", image.toString(), raw.toString());
        byte[] b = Files.readAllBytes(raw);
        Files.delete(raw);
        return b;
    }

    /** qemu-img check: the JSON output's counts, failing the test on corruption or leaks. */
    static void checkClean(Path image) throws IOException {
        Result r = exec("qemu-img", "check", "--output=json", image.toString());
        String json = r.out;
        if (r.exit != 0 || json.contains("\"corruptions\"") || json.contains("\"leaks\"")
                || !json.contains("\"check-errors\": 0")) {
            Result human = exec("qemu-img", "check", image.toString());
            throw new AssertionError("qemu-img check " + image.getFileName() + " exited " + r.exit + ": "
                    + human.out + human.err);
        }
    }

    static String check(Path image) throws IOException {
        Result r = exec("qemu-img", "check", image.toString());
        return r.exit + ": " + r.out + r.err;
    }

    /** Reads the whole image through our qcow2 driver. */
    static byte[] readOurs(Path image) throws IOException {
        try (BlockGraph g = TestGraphs.newGraph(image.getParent())) {
            g.open(TestGraphs.opts("driver", "qcow2", "node-name", "q", "read-only", true,
                    "file", Map.of("driver", "file", "filename", image.toString())));
            BlockBackend b = g.addBackend("d", "q", false);
            ByteBuffer buf = ByteBuffer.allocate((int) b.size());
            b.read(0, buf);
            return buf.array();
        }
    }

    static String text(Path p) throws IOException {
        return Files.readString(p, StandardCharsets.UTF_8);
    }
}
