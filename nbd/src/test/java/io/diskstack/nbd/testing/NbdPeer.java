package io.diskstack.nbd.testing;

import static org.junit.jupiter.api.Assertions.fail;

import io.diskstack.core.testing.Shell;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real NBD server for tests (qemu-nbd, nbdkit) on this machine's loopback or a Unix socket:
 * start it, point nodes at it, kill it and start it again on the same address.
 */
public final class NbdPeer implements AutoCloseable {
    private final List<String> command;
    private final Path socket;
    private final int port;
    /** The export name nodes ask for; null: the server's default export. */
    private final String export;
    private final Path log;
    private Process process;

    private NbdPeer(List<String> command, Path socket, int port, String export, Path log) {
        this.command = command;
        this.socket = socket;
        this.port = port;
        this.export = export;
        this.log = log;
    }

    /** {@code nbdkit ARGS…} on a new Unix socket in {@code dir} (plugins and filters as in nbdkit's syntax). */
    public static NbdPeer nbdkit(Path dir, String... args) {
        Shell.requireTool("nbdkit");
        Path sock = dir.resolve("nbdkit-" + System.nanoTime() + ".sock");
        List<String> cmd = new ArrayList<>(List.of("nbdkit", "-f", "--exit-with-parent", "-U", sock.toString()));
        cmd.addAll(List.of(args));
        return start(cmd, sock, 0, null, dir);
    }

    /** {@code qemu-nbd} serving {@code image} (format {@code format}) on 127.0.0.1 at a free port, persistent. */
    public static NbdPeer qemuNbd(Path dir, Path image, String format, String... more) {
        Shell.requireTool("qemu-nbd");
        int port = freePort();
        List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-f", format, "-b", "127.0.0.1", "-p",
                Integer.toString(port), "-t", "--shared=8", "--cache=writeback", "-x", "vol"));
        cmd.addAll(List.of(more));
        cmd.add(image.toString());
        return start(cmd, null, port, "vol", dir);
    }

    /** {@code qemu-nbd} serving {@code image} as export {@code vol} on a new Unix socket in {@code dir}, persistent. */
    public static NbdPeer qemuNbdUnix(Path dir, Path image, String format, String... more) {
        Shell.requireTool("qemu-nbd");
        Path sock = dir.resolve("qemu-nbd-" + System.nanoTime() + ".sock");
        List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-f", format, "-k", sock.toString(), "-t",
                "--shared=8", "--cache=writeback", "-x", "vol"));
        cmd.addAll(List.of(more));
        cmd.add(image.toString());
        return start(cmd, sock, 0, "vol", dir);
    }

    private static NbdPeer start(List<String> cmd, Path socket, int port, String export, Path dir) {
        try {
            NbdPeer p = new NbdPeer(cmd, socket, port, export, Files.createTempFile(dir, "peer", ".log"));
            p.restart();
            return p;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** A TCP port nothing listens on now. */
    public static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Starts the server (again, on the same address) and waits until it accepts connections. */
    public void restart() {
        try {
            if (socket != null) {
                Files.deleteIfExists(socket);
            }
            process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(
                    ProcessBuilder.Redirect.appendTo(log.toFile())).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() < deadline) {
                if (accepts()) {
                    return;
                }
                if (!process.isAlive()) {
                    fail(command.get(0) + " exited with " + process.exitValue() + ": " + Files.readString(log));
                }
                Thread.sleep(20);
            }
            fail(command.get(0) + " did not start listening within 20 s: " + Files.readString(log));
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    private boolean accepts() {
        if (socket != null) {
            // the socket file appears before the server listens on it: connect to be sure
            try (java.nio.channels.SocketChannel c = java.nio.channels.SocketChannel.open(
                    java.net.UnixDomainSocketAddress.of(socket))) {
                return true;
            } catch (IOException e) {
                return false;
            }
        }
        try (Socket s = new Socket("127.0.0.1", port)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** {@code kill -9}, and waits until it is gone. */
    public void kill() {
        process.destroyForcibly();
        try {
            process.waitFor(20, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The node options that reach it: {@code server.*} and {@code export}. */
    public String nodeOptions() {
        if (socket != null) {
            return "server.type=unix,server.path=" + socket + (export == null ? "" : ",export=" + export);
        }
        return "server.type=inet,server.host=127.0.0.1,server.port=" + port + ",export=vol";
    }

    /** The same as a JSON object's members: {@code "server": {...}, "export": "vol"}. */
    public String jsonOptions() {
        if (socket != null) {
            return "\"server\": {\"type\": \"unix\", \"path\": \"" + socket + "\"}"
                    + (export == null ? "" : ", \"export\": \"" + export + "\"");
        }
        return "\"server\": {\"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \"" + port + "\"}, \"export\": \"vol\"";
    }

    /** The URL qemu tools use. */
    public String url() {
        return socket != null ? "nbd+unix:///" + (export == null ? "" : export) + "?socket=" + socket : "nbd://127.0.0.1:" + port + "/vol";
    }

    public int port() {
        return port;
    }

    public String log() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "";
        }
    }

    @Override
    public void close() {
        if (process != null && process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(2, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
