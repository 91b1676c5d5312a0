package io.diskstack.fuse.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Shell;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code diskstack mount} in a separate JVM (built from the test class path), for tests:
 * start it, use the files under {@link #mountpoint()}, stop it with SIGTERM, {@code fusermount -u}
 * or {@code kill -9}.
 */
public final class MountedDaemon implements AutoCloseable {
    private final Process process;
    private final Path mountpoint;
    private final Path log;

    private MountedDaemon(Process process, Path mountpoint, Path log) {
        this.process = process;
        this.mountpoint = mountpoint;
        this.log = log;
    }

    /** Mounts a JSON config at {@code mountpoint}. */
    public static MountedDaemon mount(Path config, Path mountpoint) {
        return start(List.of("mount", "-v", config.toString(), mountpoint.toString()), Map.of(), mountpoint);
    }

    /** Runs {@code diskstack ARGS…} (its last argument must be the mount point) and waits for the mount. */
    public static MountedDaemon start(List<String> args, Map<String, String> env, Path mountpoint) {
        Shell.requireFuse();
        try {
            Path log = Files.createTempFile("diskstack-daemon", ".log");
            Process p = command(args, env).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            MountedDaemon d = new MountedDaemon(p, mountpoint.toAbsolutePath(), log);
            d.awaitMounted();
            return d;
        } catch (IOException e) {
            throw new AssertionError("cannot start diskstack: " + e.getMessage(), e);
        }
    }

    /** Starts {@code diskstack ARGS…} without waiting for the mount (call {@link #awaitMounted()}). */
    public static MountedDaemon launch(List<String> args, Map<String, String> env, Path mountpoint) {
        Shell.requireFuse();
        try {
            Path log = Files.createTempFile("diskstack-daemon", ".log");
            Process p = command(args, env).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            return new MountedDaemon(p, mountpoint.toAbsolutePath(), log);
        } catch (IOException e) {
            throw new AssertionError("cannot start diskstack: " + e.getMessage(), e);
        }
    }

    /** Runs {@code diskstack ARGS…} to completion (for commands that fail or do not mount). */
    public static Shell.Result runToCompletion(List<String> args, Map<String, String> env) {
        try {
            Path log = Files.createTempFile("diskstack-run", ".log");
            Path out = Files.createTempFile("diskstack-run", ".out");
            Process p = command(args, env).redirectError(log.toFile()).redirectOutput(out.toFile()).start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail("diskstack " + args + " did not finish");
            }
            return new Shell.Result(p.exitValue(), Files.readString(out), Files.readString(log));
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    private static ProcessBuilder command(List<String> args, Map<String, String> env) {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xms256m", "-Xmx256m", "-XX:MaxDirectMemorySize=512m",
                "-cp", System.getProperty("java.class.path"), "io.diskstack.fuse.Main"));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        return pb;
    }

    /** Waits until the mount appears; fails if the daemon exits first or 30 s pass. */
    public void awaitMounted() {
        if (!Await.within(Duration.ofSeconds(30), () -> isMounted(mountpoint) || !process.isAlive())) {
            process.destroyForcibly();
            fail("diskstack did not mount " + mountpoint + " within 30 s: " + log());
        }
        if (!isMounted(mountpoint)) {
            fail("diskstack exited with " + process.exitValue() + " before mounting: " + log());
        }
    }

    public static boolean isMounted(Path mountpoint) {
        try {
            String target = " " + mountpoint.toAbsolutePath() + " ";
            return Files.readAllLines(Path.of("/proc/mounts")).stream()
                    .anyMatch(l -> l.contains(target) && l.contains(" fuse"));
        } catch (IOException e) {
            return false;
        }
    }

    public Path mountpoint() {
        return mountpoint;
    }

    /** The disk file of an export. */
    public Path disk(String id) {
        return mountpoint.resolve(id);
    }

    /** A file under .control. */
    public Path control(String relative) {
        return mountpoint.resolve(".control").resolve(relative);
    }

    /** A counter from {@code .control/EXPORT/stats}, such as {@code writes} or {@code t0.throttled-now}. */
    public long stat(String export, String key) {
        try {
            return Files.readAllLines(control(export + "/stats")).stream()
                    .filter(l -> l.startsWith(key + " "))
                    .mapToLong(l -> Long.parseLong(l.substring(key.length() + 1).trim()))
                    .findFirst().orElseThrow(() -> new AssertionError("no " + key + " in " + export + "/stats"));
        } catch (IOException e) {
            throw new AssertionError("cannot read " + export + "/stats: " + e.getMessage(), e);
        }
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** What the daemon printed so far (stderr and stdout). */
    public String log() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** SIGTERM; returns the exit code once the daemon has closed everything. */
    public int stop() {
        process.destroy();
        return awaitExit();
    }

    /** {@code fusermount -u}; returns the exit code. */
    public int unmount() {
        Shell.run("fusermount", "-u", mountpoint.toString()).ok();
        return awaitExit();
    }

    /**
     * {@code kill -9}. Returns true if the mount went away by itself (auto_unmount) within 5 s;
     * clears it either way.
     */
    public boolean kill9() {
        process.destroyForcibly();
        try {
            process.waitFor(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        boolean gone = Await.within(Duration.ofSeconds(5), () -> !isMounted(mountpoint));
        clearMount();
        return gone;
    }

    public int awaitExit() {
        try {
            if (!process.waitFor(60, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                fail("diskstack did not exit within 60 s: " + log());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
        assertTrue(!isMounted(mountpoint) || clearMount(), "mount gone after exit");
        return process.exitValue();
    }

    private boolean clearMount() {
        if (isMounted(mountpoint)) {
            Shell.run("fusermount", "-u", "-z", mountpoint.toString());
        }
        return !isMounted(mountpoint);
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(30, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        clearMount();
        try {
            Files.deleteIfExists(log);
        } catch (IOException ignored) {
            // a leftover temp file is harmless
        }
    }
}
