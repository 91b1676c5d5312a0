package io.diskstack.fuse.nbd;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.nbd.testing.NbdPeer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS with pre-shared keys ({@code tls-creds-psk}, keys made by GnuTLS's psktool) both ways:
 * QEMU's tools against our server, our nbd node against qemu-nbd and nbdkit; wrong keys, unknown
 * users and plain clients refused quickly; the bad inputs a mount refuses in one line.
 */
class NbdTlsPskTest {
    @TempDir
    Path dir;

    /** A folder with a keys.psk made by psktool for each user. */
    private Path psktool(String name, String... users) throws IOException {
        Shell.requireTool("psktool");
        Path d = Files.createDirectories(dir.resolve(name));
        for (String u : users) {
            run("psktool", "-u", u, "-p", d.resolve("keys.psk").toString()).ok();
        }
        return d;
    }

    /** A client folder holding only {@code user}'s line from {@code server}'s keys.psk. */
    private Path clientKeys(String name, Path server, String user) throws IOException {
        Path d = Files.createDirectories(dir.resolve(name));
        String line = Files.readAllLines(server.resolve("keys.psk")).stream().filter(l -> l.startsWith(user + ":"))
                .findFirst().orElseThrow();
        Files.writeString(d.resolve("keys.psk"), line + "\n");
        return d;
    }

    private Path config(String nbdServer, String objects) throws IOException {
        return TlsServerConfigs.write(dir, nbdServer, objects);
    }

    private static List<String> qemuClient(Path keys, String user, int port) {
        return List.of("--object", "tls-creds-psk,id=tls0,endpoint=client,dir=" + keys + ",username=" + user,
                "--image-opts", "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + port
                        + ",export=vol,tls-creds=tls0");
    }

    private static Shell.Result qemu(Duration limit, List<String> command, List<String> more) {
        List<String> all = new ArrayList<>(command);
        all.addAll(more);
        return Shell.run(limit, null, all);
    }

    @Test
    void qemuToolsReadAndWriteThroughOurPskServer() throws Exception {
        Path server = psktool("server-keys", "alice", "bob");
        Path alice = clientKeys("alice-keys", server, "alice");
        int port = NbdPeer.freePort();
        Path config = config("{\"addr\": {\"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \"" + port + "\"}, "
                        + "\"tls-creds\": \"tls0\"}",
                "{\"qom-type\": \"tls-creds-psk\", \"id\": \"tls0\", \"dir\": \"" + server + "\", \"endpoint\": \"server\"}");
        Path mnt = dir.resolve("mnt");
        try (MountedDaemon d = MountedDaemon.start(List.of("mount", "-vv", config.toString(), mnt.toString()), Map.of(),
                mnt)) {
            Duration limit = Duration.ofSeconds(60);
            qemu(limit, List.of("qemu-io", "-c", "write -P 0x5c 0 1M", "-c", "write -P 0xa3 3M 512k"),
                    qemuClient(alice, "alice", port)).ok();
            String info = qemu(limit, List.of("qemu-img", "info"), qemuClient(alice, "alice", port)).ok().stdout();
            assertTrue(info.contains("virtual size: 16 MiB"), info);
            String read = qemu(limit, List.of("qemu-io", "-c", "read -P 0x5c 0 1M", "-c", "read -P 0xa3 3M 512k"),
                    qemuClient(alice, "alice", port)).ok().stdout();
            assertTrue(read.contains("read 1048576/1048576") && read.contains("read 524288/524288"), read);
            Path copy = dir.resolve("copy.raw");
            qemu(limit, List.of("qemu-img", "convert", "-O", "raw"), List.of("--object",
                    "tls-creds-psk,id=tls0,endpoint=client,dir=" + alice + ",username=alice", "--image-opts",
                    "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + port + ",export=vol,tls-creds=tls0",
                    copy.toString())).ok();
            assertEquals(0, run("cmp", copy.toString(), d.disk("disk0").toString()).exitCode(), "the copy matches the disk");
            assertTrue(Files.readString(d.control("nbd-server")).contains("tls psk (tls0)"));
            assertTrue(d.log().contains(": TLSv1.3 TLS_AES_128_GCM_SHA256"), "qemu's GnuTLS and we agree on TLS 1.3: "
                    + d.log());
            List<String> tls12 = List.of("--object", "tls-creds-psk,id=tls0,endpoint=client,dir=" + alice
                    + ",username=alice,priority=NORMAL:-VERS-TLS1.3", "--image-opts",
                    "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + port + ",export=vol,tls-creds=tls0");
            String read12 = qemu(limit, List.of("qemu-io", "-c", "read -P 0xa3 3M 512k"), tls12).ok().stdout();
            assertTrue(read12.contains("read 524288/524288"), read12);
            assertTrue(d.log().matches("(?s).*: TLSv1\\.2 TLS_(EC)?DHE_PSK_WITH_.*"),
                    "a TLS 1.2 client gets an ephemeral key exchange: " + d.log());

            // refused, each in a few seconds: a plain client, a wrong key, a user not in keys.psk
            Shell.Result plain = run("qemu-img", "info", "nbd://127.0.0.1:" + port + "/vol");
            assertTrue(plain.exitCode() != 0 && plain.stderr().contains("TLS"), "a plain client is refused: " + plain.stderr());
            Path wrong = Files.createDirectories(dir.resolve("wrong-keys"));
            Files.writeString(wrong.resolve("keys.psk"), "alice:" + "42".repeat(32) + "\n");
            long start = System.nanoTime();
            Shell.Result badKey = qemu(limit, List.of("qemu-img", "info"), qemuClient(wrong, "alice", port));
            assertTrue(badKey.exitCode() != 0, badKey.stdout());
            Path carol = psktool("carol-keys", "carol");
            Shell.Result unknown = qemu(limit, List.of("qemu-img", "info"), qemuClient(carol, "carol", port));
            assertTrue(unknown.exitCode() != 0, unknown.stdout());
            assertTrue(System.nanoTime() - start < 20_000_000_000L, "refusals do not wait for a timeout");
            // the daemon logs a refusal after sending the alert the client exits on
            Await.within(Duration.ofSeconds(10), () -> d.log().contains("username 'alice' did not prove")
                    && d.log().contains("username 'carol' is not in keys.psk"));
            String log = d.log();
            assertTrue(log.contains("TLS-PSK handshake failed: username 'alice' did not prove it holds the key in keys.psk"),
                    log);
            assertTrue(log.contains("TLS-PSK handshake failed: username 'carol' is not in keys.psk"), log);
            for (Path keysDir : List.of(server, carol)) {
                for (String line : Files.readAllLines(keysDir.resolve("keys.psk"))) {
                    String key = line.substring(line.indexOf(':') + 1);
                    assertFalse(log.contains(key), "no key in the log");
                }
            }
            assertFalse(Files.readString(d.control("graph")).contains("keys.psk"));
            // what a client sees of a refusal (our node names the server's alert) does not tell an
            // unknown username from a wrong key: usernames cannot be probed
            List<String> seen = new ArrayList<>();
            for (List<String> who : List.of(List.of("alice", wrong.toString()), List.of("carol", carol.toString()))) {
                Path probe = dir.resolve("probe-" + who.get(0) + ".json");
                Files.writeString(probe, """
                        {"objects": [{"qom-type": "tls-creds-psk", "id": "t1", "dir": "%s", "username": "%s"}],
                         "blockdev": [{"driver": "nbd", "node-name": "n1", "export": "vol", "tls-creds": "t1",
                                       "server": {"type": "inet", "host": "127.0.0.1", "port": "%d"}}],
                         "exports": [{"id": "probe", "node-name": "n1"}]}
                        """.formatted(who.get(1), who.get(0), port));
                Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", probe.toString(),
                        dir.resolve("mnt-probe-" + who.get(0)).toString()), Map.of());
                assertEquals(2, r.exitCode(), r.stderr());
                seen.add(r.stderr().replace("'" + who.get(0) + "'", "'USER'"));
            }
            assertEquals(seen.get(0), seen.get(1), "an unknown username fails as a wrong key does");

            // the server's credentials cannot be deleted under it (deleting wiped the keys in place)
            java.io.IOException busy = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                    () -> Files.writeString(d.control("object-del"), "tls0"));
            assertTrue(Files.readString(d.control("last-error")).contains("object 'tls0' is in use by nbd-server"),
                    busy + ": " + Files.readString(d.control("last-error")));
            qemu(limit, List.of("qemu-io", "-c", "read -P 0x5c 0 64k"), qemuClient(alice, "alice", port)).ok();
        }
    }

    @Test
    void ourNodeReadsAndWritesQemuNbdAndNbdkitOverPsk() throws Exception {
        Path keys = psktool("keys", "alice");
        Path image = dir.resolve("remote.img");
        run("qemu-img", "create", "-f", "raw", image.toString(), "32M").ok();
        Path nbdkitKeys = psktool("nbdkit-keys", "dave");
        try (NbdPeer qemuNbd = NbdPeer.qemuNbd(dir, image, "raw", "--object",
                "tls-creds-psk,id=tls0,endpoint=server,dir=" + keys, "--tls-creds", "tls0");
             NbdPeer nbdkit = NbdPeer.nbdkit(dir, "--tls=require", "--tls-psk=" + nbdkitKeys.resolve("keys.psk"),
                     "memory", "64M")) {
            Path cfg = dir.resolve("client.json");
            Files.writeString(cfg, """
                    {"objects": [{"qom-type": "tls-creds-psk", "id": "t1", "dir": "%s", "endpoint": "client", "username": "alice"},
                                 {"qom-type": "tls-creds-psk", "id": "t2", "dir": "%s", "endpoint": "client", "username": "dave"}],
                     "blockdev": [{"driver": "nbd", "node-name": "n1", %s, "tls-creds": "t1"},
                                  {"driver": "nbd", "node-name": "n2", %s, "tls-creds": "t2"}],
                     "exports": [{"id": "qemu", "node-name": "n1", "writable": true},
                                 {"id": "kit", "node-name": "n2", "writable": true}]}
                    """.formatted(keys, nbdkitKeys, qemuNbd.jsonOptions(), nbdkit.jsonOptions()));
            Path data = dir.resolve("data");
            run("dd", "if=/dev/urandom", "of=" + data, "bs=1M", "count=8", "status=none").ok();
            try (MountedDaemon d = MountedDaemon.mount(cfg, dir.resolve("mnt"))) {
                for (String export : List.of("qemu", "kit")) {
                    run("dd", "if=" + data, "of=" + d.disk(export), "bs=1M", "seek=3", "oflag=direct", "conv=notrunc",
                            "status=none").ok();
                    assertEquals(0, run("cmp", "-n", "8388608", "-i", "0:3145728", data.toString(),
                            d.disk(export).toString()).exitCode(), export);
                }
                String graph = Files.readString(d.control("graph"));
                assertEquals(2, graph.split("tls psk TLSv1\\.3 TLS_AES_128_GCM_SHA256", -1).length - 1,
                        "qemu-nbd and nbdkit both speak TLS 1.3: " + graph);
                assertEquals(0, d.stop(), d.log());
            }
            assertEquals(0, run("cmp", "-n", "8388608", "-i", "0:3145728", data.toString(), image.toString()).exitCode(),
                    "the writes reached qemu-nbd's image");
        }
    }

    @Test
    void aWrongKeyOrAnUnknownUserIsRefusedInOneLineWithoutWaiting() throws Exception {
        Path keys = psktool("keys", "alice");
        Path image = dir.resolve("remote.img");
        run("qemu-img", "create", "-f", "raw", image.toString(), "4M").ok();
        Path wrong = Files.createDirectories(dir.resolve("wrong"));
        Files.writeString(wrong.resolve("keys.psk"), "alice:" + "17".repeat(32) + "\nmallory:" + "18".repeat(32) + "\n");
        try (NbdPeer qemuNbd = NbdPeer.qemuNbd(dir, image, "raw", "--object",
                "tls-creds-psk,id=tls0,endpoint=server,dir=" + keys, "--tls-creds", "tls0")) {
            for (String user : List.of("alice", "mallory")) {
                Path cfg = dir.resolve("client-" + user + ".json");
                Files.writeString(cfg, """
                        {"objects": [{"qom-type": "tls-creds-psk", "id": "t1", "dir": "%s", "username": "%s"}],
                         "blockdev": [{"driver": "nbd", "node-name": "n1", %s, "tls-creds": "t1"}],
                         "exports": [{"id": "qemu", "node-name": "n1"}]}
                        """.formatted(wrong, user, qemuNbd.jsonOptions()));
                long start = System.nanoTime();
                Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", cfg.toString(),
                        dir.resolve("mnt-" + user).toString()), Map.of());
                assertTrue(System.nanoTime() - start < 15_000_000_000L, "no wait for a timeout");
                assertEquals(2, r.exitCode(), r.stderr());
                assertTrue(r.stderr().matches("diskstack: blockdev 'n1' \\(nbd\\): 127\\.0\\.0\\.1:\\d+: the TLS-PSK "
                        + "handshake for username '" + user + "' failed \\([a-z_ ]+\\): is the username in the server's "
                        + "keys\\.psk, with the same key\\?\n"), r.stderr());
                // eight hex digits of a key: four could be in the port number
                assertFalse(r.stderr().contains("17171717") || r.stderr().contains("18181818"), "no key in the message");
            }
        }
    }

    @Test
    void aMountRefusesBadPskInputWithOneLineAndExitTwo() throws Exception {
        String server = "{\"addr\": {\"type\": \"unix\", \"path\": \"s.sock\"}, \"tls-creds\": \"tls0\"}";
        Files.createDirectories(dir.resolve("empty"));
        assertRefused(config(server, psk("empty", "server")),
                "object 'tls0' (tls-creds-psk): '" + dir.resolve("empty/keys.psk") + "' is missing");
        Path bad = Files.createDirectories(dir.resolve("bad"));
        Files.writeString(bad.resolve("keys.psk"), "alice:" + "ab".repeat(32) + "\nbob=" + "cd".repeat(32) + "\n");
        assertRefused(config(server, psk("bad", "server")),
                "object 'tls0' (tls-creds-psk): '" + bad.resolve("keys.psk") + "' line 2 is not 'username:hexkey'");
        assertRefused(config(server, psk("bad", "client")),
                "object 'tls0' (tls-creds-psk): '" + bad.resolve("keys.psk") + "' line 2 is not 'username:hexkey'");
        Files.writeString(bad.resolve("keys.psk"), "alice:" + "ab".repeat(32) + "\n");
        assertRefused(config(server, psk("bad", "client")),
                "object 'tls0' (tls-creds-psk): username 'qemu' is not in '" + bad.resolve("keys.psk") + "'");
        assertFalse(Files.exists(dir.resolve("a.img")), "nothing was created");
        assertRefused(config(server, psk("bad", "client").replace("}", ", \"username\": \"alice\"}")),
                "nbd-server: 'tls-creds' object 'tls0' is for a client: give it endpoint=server");
    }

    private String psk(String folder, String endpoint) {
        return "{\"qom-type\": \"tls-creds-psk\", \"id\": \"tls0\", \"dir\": \"" + folder + "\", \"endpoint\": \""
                + endpoint + "\"}";
    }

    private void assertRefused(Path config, String message) {
        Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", config.toString(), dir.resolve("mnt-bad").toString()),
                Map.of());
        assertEquals(2, r.exitCode(), r.stderr());
        assertEquals("diskstack: " + message + "\n", r.stderr());
        assertFalse(r.stderr().contains("abab") || r.stderr().contains("cdcd"), "no key in the message");
    }
}
