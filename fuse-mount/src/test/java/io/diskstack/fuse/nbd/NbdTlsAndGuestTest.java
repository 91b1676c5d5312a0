package io.diskstack.fuse.nbd;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.nbd.testing.NbdPeer;
import io.diskstack.nbd.testing.TestCertificates;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS with x509 certificates made by certtool (QEMU's file layout), a plain client refused by a
 * TLS server, a QEMU TCG guest booting from our export, and the bad inputs a mount refuses.
 */
class NbdTlsAndGuestTest {
    @TempDir
    Path dir;

    private Path config(String nbdServer, String objects) throws IOException {
        return TlsServerConfigs.write(dir, nbdServer, objects);
    }

    @Test
    void tlsWithCertificatesAndAPlainClientRefused() throws Exception {
        Path server = dir.resolve("server-pki");
        Path client = dir.resolve("client-pki");
        TestCertificates.make(dir, server, client);
        int port = NbdPeer.freePort();
        Path config = config("{\"addr\": {\"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \"" + port + "\"}, "
                        + "\"tls-creds\": \"tls0\"}",
                "{\"qom-type\": \"tls-creds-x509\", \"id\": \"tls0\", \"dir\": \"" + server + "\", \"endpoint\": \"server\", "
                        + "\"verify-peer\": true}");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            List<String> tls = List.of("--object", "tls-creds-x509,id=tls0,dir=" + client + ",endpoint=client",
                    "--image-opts", "driver=nbd,host=127.0.0.1,port=" + port + ",export=vol,tls-creds=tls0");
            run(concat(List.of("qemu-io", "-c", "write -P 0x7e 0 1M"), tls)).ok();
            String info = run(concat(List.of("qemu-img", "info"), tls)).ok().stdout();
            assertTrue(info.contains("virtual size: 16 MiB"), info);
            String read = run(concat(List.of("qemu-io", "-c", "read -P 0x7e 0 1M"), tls)).ok().stdout();
            assertTrue(read.contains("read 1048576/1048576"), read);
            Shell.Result plain = run("qemu-img", "info", "nbd://127.0.0.1:" + port + "/vol");
            assertTrue(plain.exitCode() != 0 && plain.stderr().contains("TLS"), "a plain client is refused: " + plain.stderr());
            assertTrue(Files.readString(d.control("nbd-server")).contains("tls x509 (tls0)"));
            // our own nbd node over TLS, as a second mount's child
            Path cfg2 = dir.resolve("client.json");
            Files.writeString(cfg2, """
                    {"objects": [{"qom-type": "tls-creds-x509", "id": "t1", "dir": "%s", "endpoint": "client"}],
                     "blockdev": [{"driver": "nbd", "node-name": "n0", "server": {"type": "inet", "host": "127.0.0.1",
                                   "port": "%d"}, "export": "vol", "tls-creds": "t1"}],
                     "exports": [{"id": "remote", "node-name": "n0", "writable": true}]}
                    """.formatted(client, port));
            try (MountedDaemon d2 = MountedDaemon.mount(cfg2, dir.resolve("mnt2"))) {
                assertEquals(0, run("cmp", "-n", "1048576", d2.disk("remote").toString(), d.disk("disk0").toString())
                        .exitCode());
                assertTrue(d2.stop() == 0, d2.log());
            }
            assertTrue(!d.log().contains("BEGIN") && !d.log().contains("PRIVATE"), "no key material in the log");
        }
    }

    @Test
    void tlsWithCertificatesOnAUnixSocket() throws Exception {
        Path server = dir.resolve("server-pki");
        Path client = dir.resolve("client-pki");
        TestCertificates.make(dir, server, client);
        Path sock = dir.resolve("nbd.sock");
        Path config = config("{\"addr\": {\"type\": \"unix\", \"path\": \"" + sock + "\"}, \"tls-creds\": \"tls0\"}",
                "{\"qom-type\": \"tls-creds-x509\", \"id\": \"tls0\", \"dir\": \"" + server + "\", \"endpoint\": \"server\"}");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            List<String> tls = List.of("--object", "tls-creds-x509,id=tls0,endpoint=client,dir=" + client, "--image-opts",
                    "driver=nbd,server.type=unix,server.path=" + sock + ",export=vol,tls-creds=tls0,tls-hostname=localhost");
            String io = run(concat(List.of("qemu-io", "-c", "write -P 0x5a 0 1M", "-c", "read -P 0x5a 0 1M"), tls)).ok().stdout();
            assertTrue(io.contains("wrote 1048576/1048576") && io.contains("read 1048576/1048576"), io);
            Path expected = dir.resolve("expected.img");
            Files.write(expected, new byte[16 << 20]);
            byte[] pattern = new byte[1 << 20];
            java.util.Arrays.fill(pattern, (byte) 0x5a);
            Files.write(expected, pattern, java.nio.file.StandardOpenOption.WRITE);
            assertEquals(0, run("cmp", expected.toString(), d.disk("disk0").toString()).exitCode(), "the export holds what qemu-io wrote");
            Shell.Result plain = run("qemu-img", "info", "nbd+unix:///vol?socket=" + sock);
            assertTrue(plain.exitCode() != 0 && plain.stderr().contains("TLS"), "a plain client is refused: " + plain.stderr());
            Shell.Result wrongName = run(concat(List.of("qemu-img", "info"), List.of("--object",
                    "tls-creds-x509,id=tls0,endpoint=client,dir=" + client, "--image-opts", "driver=nbd,server.type=unix,"
                            + "server.path=" + sock + ",export=vol,tls-creds=tls0,tls-hostname=elsewhere.example")));
            assertTrue(wrongName.exitCode() != 0 && wrongName.stderr().contains("Certificate does not match the hostname"),
                    "a certificate for another name is refused by the certificate check: " + wrongName.stderr());
            assertTrue(!d.log().contains("BEGIN") && !d.log().contains("PRIVATE"), "no key material in the log");
        }
    }

    @Test
    void aMountRefusesBadNbdInputWithOneLineAndExitTwo() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            assertRefused(config("{\"addr\": {\"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \""
                    + taken.getLocalPort() + "\"}}", ""), "nbd-server: cannot listen on 127.0.0.1:" + taken.getLocalPort()
                    + ": address already in use");
        }
        assertRefused(config("{\"addr\": {\"type\": \"inet\", \"host\": \"0.0.0.0\", \"port\": \"10809\"}}", ""),
                "nbd-server: listening on 0.0.0.0:10809 without TLS: give tls-creds= (a tls-creds-x509 or tls-creds-psk object), "
                        + "or insecure=on to serve the disks in clear to the network");
        assertRefused(config("{\"addr\": {\"type\": \"inet\", \"host\": \"no-such-host.invalid\"}}", ""),
                "nbd-server: 'addr.host' 'no-such-host.invalid' does not resolve");
        Files.createDirectories(dir.resolve("empty-pki"));
        assertRefused(config("{\"addr\": {\"type\": \"unix\", \"path\": \"s.sock\"}, \"tls-creds\": \"tls0\"}",
                        "{\"qom-type\": \"tls-creds-x509\", \"id\": \"tls0\", \"dir\": \"empty-pki\", \"endpoint\": \"server\"}"),
                "object 'tls0' (tls-creds-x509): '" + dir.resolve("empty-pki/ca-cert.pem") + "' is missing");
        Path c = config("{\"addr\": {\"type\": \"unix\", \"path\": \"s.sock\"}}", "");
        Files.writeString(c, Files.readString(c).replace("\"nbd-server\": {\"addr\": {\"type\": \"unix\", \"path\": \"s.sock\"}},", ""));
        assertRefused(c, "export 'e0': type nbd needs an nbd-server (--nbd-server addr.type=inet,addr.host=127.0.0.1,addr.port=10809)");
        assertTrue(!Files.exists(dir.resolve("a.img")), "nothing was created");
    }

    private void assertRefused(Path config, String message) {
        Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", config.toString(), dir.resolve("mnt-bad").toString()),
                Map.of());
        assertEquals(2, r.exitCode(), r.stderr());
        assertEquals("diskstack: " + message + "\n", r.stderr());
    }

    @Test
    void aTcgGuestBootsFromTheExport() throws Exception {
        Shell.requireTool("qemu-system-x86_64");
        int port = NbdPeer.freePort();
        Path config = config("{\"addr\": {\"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \"" + port + "\"}}", "");
        // a boot sector: print a line on COM1, then leave through isa-debug-exit
        String code = "31c08ed8fc" + "baf803" + "be1a7c" + "ac" + "84c0" + "7403" + "ee" + "ebf8" + "b001" + "e6f4" + "f4" + "ebfd";
        byte[] sector = new byte[512];
        byte[] program = HexFormat.of().parseHex(code);
        System.arraycopy(program, 0, sector, 0, program.length);
        byte[] message = "diskstack nbd boot ok\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        System.arraycopy(message, 0, sector, 26, message.length);
        sector[510] = 0x55;
        sector[511] = (byte) 0xaa;
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Files.write(d.disk("disk0"), sector, java.nio.file.StandardOpenOption.WRITE);
            Path serial = dir.resolve("serial.txt");
            Shell.Result r = Shell.run(Duration.ofMinutes(2), dir, List.of("qemu-system-x86_64", "-accel", "tcg",
                    "-M", "pc", "-m", "32", "-display", "none", "-no-reboot", "-serial", "file:" + serial,
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                    "-drive", "file=nbd://127.0.0.1:" + port + "/vol,format=raw,cache=none,if=ide"));
            assertEquals(3, r.exitCode(), "the guest left through isa-debug-exit: " + r.stderr());
            assertTrue(Files.readString(serial).contains("diskstack nbd boot ok"), Files.readString(serial));
        }
    }

    private static String[] concat(List<String> a, List<String> b) {
        List<String> all = new java.util.ArrayList<>(a);
        all.addAll(b);
        return all.toArray(new String[0]);
    }
}
