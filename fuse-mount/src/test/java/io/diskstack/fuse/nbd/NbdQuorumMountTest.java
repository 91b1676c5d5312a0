package io.diskstack.fuse.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.fuse.testing.SeedStack;
import io.diskstack.nbd.testing.NbdPeer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The seed stack (throttle → luks → quorum) with its three qcow2 children each behind its own
 * qemu-nbd on loopback: one server killed while fio writes and verifies through the mount, the
 * disk goes on serving; started again, its node reconnects.
 */
class NbdQuorumMountTest {
    @TempDir
    Path dir;
    private final List<NbdPeer> peers = new ArrayList<>();

    @AfterEach
    void stopPeers() {
        peers.forEach(NbdPeer::close);
    }

    @Test
    void aChildServerKilledDuringFioVerifyIsOutvotedAndReconnects() throws Exception {
        Shell.requireTool("fio");
        Path config = SeedStack.create(dir, "64M");
        String json = Files.readString(config);
        for (int i = 0; i < 3; i++) {
            NbdPeer peer = NbdPeer.qemuNbd(dir, dir.resolve("c" + i + ".qcow2"), "qcow2");
            peers.add(peer);
            json = json.replace("{\"driver\": \"qcow2\", \"node-name\": \"img" + i + "\", \"file\": {\"driver\": \"file\", "
                    + "\"filename\": \"c" + i + ".qcow2\"}}", "{\"driver\": \"nbd\", \"node-name\": \"img" + i + "\", "
                    + peer.jsonOptions() + "}");
        }
        assertTrue(json.contains("\"driver\": \"nbd\", \"node-name\": \"img2\""), json);
        Files.writeString(config, json);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Process fio = new ProcessBuilder("fio", "--name=verify", "--filename=" + d.disk("disk0"), "--rw=randwrite",
                    "--bs=4k", "--iodepth=8", "--ioengine=libaio", "--direct=1", "--size=24M", "--verify=crc32c",
                    "--verify_fatal=1", "--do_verify=1").redirectErrorStream(true)
                    .redirectOutput(dir.resolve("fio.txt").toFile()).start();
            awaitStat(d, "disk0/stats", "writes", 200);
            peers.get(1).kill();
            assertTrue(fio.waitFor(3, TimeUnit.MINUTES), "fio finished");
            String out = Files.readString(dir.resolve("fio.txt"));
            assertEquals(0, fio.exitValue(), "no verify error with a child gone: " + out);
            String stats = Files.readString(d.control("disk0/stats"));
            assertTrue(stat(stats, "q0.children.1.errors") > 0, "the lost child is counted: " + stats);
            assertEquals(0, stat(stats, "errors"), "the disk saw no error: " + stats);
            assertEquals(0, stat(stats, "img1.connected"), stats);
            peers.get(1).restart();
            awaitStat(d, "disk0/stats", "img1.reconnects", 1);
            stats = Files.readString(d.control("disk0/stats"));
            assertEquals(1, stat(stats, "img1.connected"), stats);
            Shell.run("dd", "if=" + d.disk("disk0"), "of=/dev/null", "bs=1M", "count=24", "iflag=direct").ok();
            assertEquals(0, d.stop(), d.log());
        }
    }

    private static long stat(String stats, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " ([0-9]+)$").matcher(stats);
        assertTrue(m.find(), name + " in " + stats);
        return Long.parseLong(m.group(1));
    }

    /** Polls a stats file until a counter reaches a value (60 s at most), as a user watching it would. */
    private static void awaitStat(MountedDaemon d, String file, String name, long atLeast)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (stat(Files.readString(d.control(file)), name) < atLeast) {
            assertTrue(System.nanoTime() < deadline, name + " did not reach " + atLeast + ": "
                    + Files.readString(d.control(file)));
            Thread.sleep(20);
        }
    }
}
