package io.diskstack.fuse.nbd;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Our NBD server, from a real mount, against real clients on loopback: qemu-img, qemu-io,
 * nbdinfo, nbdcopy, fio's nbd engine, and clients that misbehave. One node is served as a file
 * and over NBD at once (writable {@code vol}, read-only {@code ro}).
 */
class NbdServerMountTest {
    @TempDir
    static Path dir;
    static MountedDaemon daemon;
    static String url;
    static String roUrl;
    static int port;

    @BeforeAll
    static void mount() throws IOException {
        for (String tool : List.of("qemu-img", "qemu-io", "nbdinfo", "nbdcopy", "fio")) {
            Shell.requireTool(tool);
        }
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "a.qcow2", "format": "qcow2", "size": "64M"}],
                 "nbd-server": {"addr": {"type": "inet", "host": "127.0.0.1", "port": "0"}, "max-connections": 6},
                 "blockdev": [{"driver": "qcow2", "node-name": "q0", "file": {"driver": "file", "filename": "a.qcow2"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true},
                             {"type": "nbd", "id": "e0", "node-name": "q0", "name": "vol", "writable": true,
                              "description": "the seed disk"},
                             {"type": "nbd", "id": "e1", "node-name": "q0", "name": "ro"}]}
                """);
        daemon = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
        Matcher m = Pattern.compile("address 127\\.0\\.0\\.1:([0-9]+)").matcher(control());
        assertTrue(m.find(), control());
        port = Integer.parseInt(m.group(1));
        url = "nbd://127.0.0.1:" + port + "/vol";
        roUrl = "nbd://127.0.0.1:" + port + "/ro";
    }

    @AfterAll
    static void unmount() {
        if (daemon != null) {
            assertEquals(0, daemon.stop(), daemon.log());
        }
    }

    static String control() throws IOException {
        return Files.readString(daemon.control("nbd-server"));
    }

    @Test
    void qemuImgSeesTheDiskAndCopiesItSparsely() throws Exception {
        assertTrue(run("qemu-img", "info", url).ok().stdout().contains("virtual size: 64 MiB (67108864 bytes)"));
        run("qemu-io", "-f", "raw", "-c", "write -P 0x3c 8M 1M", url).ok();
        Path copy = dir.resolve("copy.qcow2");
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", url, copy.toString()).ok();
        assertTrue(run("qemu-img", "compare", "-f", "raw", "-F", "qcow2", url, copy.toString()).ok().stdout()
                .contains("Images are identical"));
        String map = run("qemu-img", "map", "--output=json", "-f", "qcow2", copy.toString()).ok().stdout();
        assertTrue(map.contains("\"start\": 8388608, \"length\": 1048576, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true"),
                "only what was written is allocated in the copy: " + map);
        assertTrue(map.contains("\"start\": 0, \"length\": 8388608, \"depth\": 0, \"present\": false, \"zero\": true, \"data\": false"),
                map);
        assertTrue(run("qemu-img", "compare", url, daemon.disk("disk0").toString()).ok().stdout().contains("identical"),
                "the file and the NBD export show the same node");
    }

    @Test
    void nbdinfoListsTheExportsAndMapsHoles() throws Exception {
        run("qemu-io", "-f", "raw", "-c", "write -P 0x11 16M 64k", url).ok();
        String map = run("nbdinfo", "--map", url).ok().stdout();
        assertTrue(map.matches("(?s).*\\b16777216\\s+65536\\s+0\\s+data.*"), map);
        assertTrue(map.matches("(?s).*\\s3\\s+hole,zero.*"), map);
        String list = run("nbdinfo", "--list", "nbd://127.0.0.1:" + port).ok().stdout();
        assertTrue(list.contains("export=\"vol\"") && list.contains("export=\"ro\"") && list.contains("the seed disk"), list);
        String info = run("nbdinfo", url).ok().stdout();
        assertTrue(info.contains("can_multi_conn: true") && info.contains("can_fua: true") && info.contains("is_read_only: false"),
                info);
        assertTrue(run("nbdinfo", roUrl).ok().stdout().contains("is_read_only: true"));
    }

    @Test
    void qemuIoPatternsUnalignedZeroesAndDiscards() throws Exception {
        run("qemu-io", "-f", "raw", "-c", "write -P 0xa5 1000 3000", "-c", "write -P 0x5a 4000 9000",
                "-c", "write -z 6000 1000", "-c", "aio_write -P 0x77 40000 4096", "-c", "aio_flush",
                "-c", "discard 65536 65536", url).ok();
        String out = run("qemu-io", "-f", "raw", "-c", "read -P 0xa5 1000 3000", "-c", "read -P 0x5a 4000 2000",
                "-c", "read -P 0 6000 1000", "-c", "read -P 0x5a 7000 6000", "-c", "read -P 0x77 40000 4096", url)
                .ok().stdout();
        assertFalse(out.contains("Pattern verification failed"), out);
        assertTrue(run("qemu-io", "-f", "raw", "-c", "write -P 1 0 512", roUrl).stderr().contains("Operation not permitted")
                || !run("qemu-io", "-f", "raw", "-c", "write -P 1 0 512", roUrl).stdout().contains("wrote"),
                "a read-only export refuses writes");
        // the same bytes through the FUSE file
        byte[] disk = new byte[13000];
        try (var f = java.nio.channels.FileChannel.open(daemon.disk("disk0"))) {
            f.read(java.nio.ByteBuffer.wrap(disk), 0);
        }
        assertEquals((byte) 0xa5, disk[1000]);
        assertEquals((byte) 0x5a, disk[4000]);
        assertEquals(0, disk[6500]);
        assertEquals((byte) 0x5a, disk[12999]);
    }

    @Test
    void nbdcopyOfTheSparseExport() throws Exception {
        run("qemu-io", "-f", "raw", "-c", "write -P 0x42 32M 2M", url).ok();
        Path out = dir.resolve("copy.raw");
        run("nbdcopy", url, out.toString()).ok();
        assertEquals(0, run("cmp", out.toString(), daemon.disk("disk0").toString()).exitCode());
    }

    @Test
    void fioVerifiesAtQueueDepth32() throws Exception {
        Shell.Result r = Shell.run(Duration.ofMinutes(3), dir, List.of("fio", "--name=verify", "--ioengine=nbd",
                "--uri=" + url, "--rw=randwrite", "--bs=4k", "--iodepth=32", "--offset=40M", "--size=16M",
                "--verify=crc32c", "--verify_fatal=1", "--do_verify=1"));
        assertEquals(0, r.exitCode(), r.stdout() + r.stderr());
        assertFalse(r.stdout().contains("verify:") && r.stdout().contains("bad"), r.stdout());
        assertTrue(control().matches("(?s).*peak-in-flight ([2-9]|[1-9][0-9]+)\\n.*"),
                "requests ran in parallel: " + control());
    }

    @Test
    void misbehavingClientsAreDroppedAndTheOthersGoOn() throws Exception {
        run("qemu-io", "-f", "raw", "-c", "write -P 0x66 60M 64k", url).ok();
        // garbage instead of the client flags and options
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.getOutputStream().write("GET / HTTP/1.1\r\n\r\n".repeat(10).getBytes(StandardCharsets.US_ASCII));
            assertEquals(-1, drain(s), "a client sending garbage is dropped");
        }
        // a client that stops in the middle of a write request
        try (Socket s = new Socket("127.0.0.1", port)) {
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            DataInputStream in = new DataInputStream(s.getInputStream());
            negotiate(in, out, "vol");
            out.writeInt(0x25609513);
            out.writeShort(0);
            out.writeShort(1);
            out.writeLong(7);
            out.writeLong(60L << 20);
            out.writeInt(65536);
            out.write(new byte[100]);
            out.flush();
        }
        // an oversized write is a protocol error: the connection closes
        try (Socket s = new Socket("127.0.0.1", port)) {
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            DataInputStream in = new DataInputStream(s.getInputStream());
            negotiate(in, out, "vol");
            out.writeInt(0x25609513);
            out.writeShort(0);
            out.writeShort(1);
            out.writeLong(8);
            out.writeLong(0);
            out.writeInt(64 << 20);
            out.flush();
            assertEquals(-1, drain(s), "a write above the maximum payload closes the connection");
        }
        // max-connections: 6 held, the 7th is closed at once
        List<Socket> held = new ArrayList<>();
        try {
            for (int i = 0; i < 6; i++) {
                Socket s = new Socket("127.0.0.1", port);
                held.add(s);
                new DataInputStream(s.getInputStream()).readFully(new byte[18]);
            }
            try (Socket extra = new Socket("127.0.0.1", port)) {
                assertEquals(-1, extra.getInputStream().read(), "the connection past max-connections is closed");
            }
            assertTrue(control().contains("refused-connections 1"), control());
        } finally {
            for (Socket s : held) {
                s.close();
            }
        }
        assertFalse(run("qemu-img", "info", "nbd://127.0.0.1:" + port + "/nope").exitCode() == 0, "unknown export");
        String out = run("qemu-io", "-f", "raw", "-c", "read -P 0x66 60M 64k", url).ok().stdout();
        assertFalse(out.contains("Pattern verification failed"), "the disk is not affected: " + out);
    }

    /** block-export-add type=nbd serves a node on the running server, recorded in the config; -del stops it. */
    @Test
    void blockExportAddServesANodeOverNbdWhileTheMountRuns() throws Exception {
        String live = "nbd://127.0.0.1:" + port + "/live";
        assertTrue(run("nbdinfo", live).exitCode() != 0, "not served yet");
        Files.writeString(daemon.control("block-export-add"), "type=nbd,id=e2,node-name=q0,name=live,writable=on");
        run("qemu-io", "-f", "raw", "-c", "write -P 0x6b 20M 64k", live).ok();
        assertFalse(run("qemu-io", "-f", "raw", "-c", "read -P 0x6b 20M 64k", url).ok().stdout()
                .contains("Pattern verification failed"), "the same node as the other exports");
        assertFalse(Files.exists(dir.resolve("mnt").resolve("e2")), "an NBD export is no file in the mount");
        String config = Files.readString(dir.resolve("config.json"));
        assertTrue(config.contains("\"name\" : \"live\"") || config.contains("\"name\":\"live\""), config);
        // a name in use is refused with one line; nothing changes
        IOException taken = assertThrows(IOException.class,
                () -> Files.writeString(daemon.control("block-export-add"), "type=nbd,id=e3,node-name=q0,name=vol"));
        String why = Files.readString(daemon.control("last-error"));
        assertTrue(why.contains("'vol' is already served by export 'e0'"), why + " " + taken);
        assertFalse(Files.readString(dir.resolve("config.json")).contains("\"e3\""));
        // a file owner that does not exist is refused before anything changes
        assertThrows(IOException.class, () -> Files.writeString(daemon.control("block-export-add"),
                "id=f9,node-name=q0,owner=no-such-user-here"));
        assertTrue(Files.readString(daemon.control("last-error")).contains("no-such-user-here"));
        assertFalse(Files.exists(dir.resolve("mnt").resolve("f9")));
        // safe mode refuses while a client is connected, as QEMU's does; hard mode disconnects it
        try (Socket s = new Socket("127.0.0.1", port)) {
            negotiate(new DataInputStream(s.getInputStream()), new DataOutputStream(s.getOutputStream()), "live");
            awaitExportClients(1);
            assertThrows(IOException.class, () -> Files.writeString(daemon.control("block-export-del"), "id=e2"));
            String busyWhy = Files.readString(daemon.control("last-error"));
            assertTrue(busyWhy.contains("export 'e2' has 1 NBD client connected"), busyWhy);
            Files.writeString(daemon.control("block-export-del"), "id=e2,mode=hard");
            assertEquals(-1, drain(s), "the server closes the connection");
        }
        assertTrue(run("nbdinfo", live).exitCode() != 0, "no longer served");
        assertFalse(Files.readString(dir.resolve("config.json")).contains("\"live\""));
    }

    /** A revert changes the disk under every user: an NBD client counts as one, as an open file does. */
    @Test
    void aRevertWaitsForNoNbdClientOfTheDisk() throws Exception {
        Files.writeString(daemon.control("disk0/snapshot-internal"), "before-revert");
        try (Socket s = new Socket("127.0.0.1", port)) {
            negotiate(new DataInputStream(s.getInputStream()), new DataOutputStream(s.getOutputStream()), "vol");
            awaitExportClients(1);
            IOException busy = assertThrows(IOException.class,
                    () -> Files.writeString(daemon.control("disk0/snapshot-revert"), "before-revert"));
            String why = Files.readString(daemon.control("disk0/last-error"));
            assertTrue(why.contains("export 'e0' has 1 NBD client connected: disconnect it first, as a revert "
                    + "changes its content under it"), why + " " + busy);
        }
        // the server sees the close a moment later
        assertTrue(io.diskstack.core.testing.Await.within(Duration.ofSeconds(20), () -> {
            try {
                Files.writeString(daemon.control("disk0/snapshot-revert"), "before-revert");
                return true;
            } catch (IOException stillBusy) {
                return false;
            }
        }), "the revert goes once the client is gone");
        Files.writeString(daemon.control("disk0/snapshot-delete"), "before-revert");
    }

    /** Waits until the server counts the client as one of an export's (the control file's per-export line). */
    private static void awaitExportClients(int n) {
        io.diskstack.core.testing.Await.until("an export with " + n + " client(s) in nbd-server", () -> {
            try {
                return control().contains("\n  connections " + n + "\n");
            } catch (IOException e) {
                return false;
            }
        });
    }

    /** Fixed newstyle up to NBD_OPT_EXPORT_NAME. */
    private static void negotiate(DataInputStream in, DataOutputStream out, String name) throws IOException {
        in.readFully(new byte[18]);
        out.writeInt(3);
        out.writeLong(0x49484156454F5054L);
        out.writeInt(1);
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        out.writeInt(n.length);
        out.write(n);
        out.flush();
        in.readFully(new byte[10]);
    }

    /** Reads until the server closes; -1 then (a socket timeout fails the test instead of hanging). */
    private static int drain(Socket s) throws IOException {
        s.setSoTimeout(20_000);
        try {
            while (s.getInputStream().read() >= 0) {
                // skip what the server sent before closing
            }
        } catch (java.net.SocketException e) {
            // reset: closed with our data unread, as good as a close
        }
        return -1;
    }
}
