package io.diskstack.fuse;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code diskstack mount --daemonize}: a JVM cannot fork, so this starts the mount as a new
 * process ({@link DaemonChild}) with the same JVM options, passes on what it prints until the
 * mount is ready, and returns 0 then; if the mount fails first, its exit code. The child's
 * standard streams are pipes and /dev/null of this process, never the caller's, so a caller
 * that reads this command's output to its end ({@code $(...)}) is not held by the daemon.
 */
final class Daemonizer {
    private Daemonizer() {}

    /** Starts {@code diskstack ARGS} as the daemon; returns this command's exit code. */
    static int run(List<String> args, PrintWriter err) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Main.class.getName());
        cmd.addAll(args);
        Process child = new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        Thread stopChild = new Thread(() -> {
            // interrupted before the mount was ready: the half-started daemon goes too
            child.destroy();
        });
        Runtime.getRuntime().addShutdownHook(stopChild);
        try (BufferedReader in = new BufferedReader(new InputStreamReader(child.getErrorStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.equals(DaemonChild.READY)) {
                    Runtime.getRuntime().removeShutdownHook(stopChild);
                    return 0;
                }
                err.println(line);
                err.flush();
            }
        }
        // the pipe closes when the child and every process it started are gone
        int code = child.waitFor();
        Runtime.getRuntime().removeShutdownHook(stopChild);
        return code;
    }
}
