package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Throttle groups through the mount: the rate dd sees, a group shared by two exports, and limits
 * changed at run time through {@code .control/throttle-groups/ID/}. Limits are small so the tests
 * stay short; the bucket lets a tenth of a second of the rate, and one request, through at once.
 */
class ThrottleMountTest {
    private static final long MIB = 1 << 20;

    @TempDir
    static Path dir;
    static MountedDaemon daemon;

    @BeforeAll
    static void mount() throws Exception {
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "a.img", "format": "raw", "size": "64M"},
                            {"filename": "b.img", "format": "raw", "size": "64M"},
                            {"filename": "c.img", "format": "raw", "size": "64M"},
                            {"filename": "d.img", "format": "raw", "size": "64M"},
                            {"filename": "e.img", "format": "raw", "size": "64M"}],
                 "objects": [{"qom-type": "throttle-group", "id": "solo", "limits": {"bps-total": 4194304}},
                             {"qom-type": "throttle-group", "id": "shared", "limits": {"bps-write": 4194304}},
                             {"qom-type": "throttle-group", "id": "live", "limits": {"bps-total": 1048576}},
                             {"qom-type": "throttle-group", "id": "burst",
                              "limits": {"bps-total": 2097152, "bps-total-max": 8388608}}],
                 "blockdev": [
                   {"driver": "raw", "node-name": "ra", "file": {"driver": "file", "filename": "a.img"}},
                   {"driver": "raw", "node-name": "rb", "file": {"driver": "file", "filename": "b.img"}},
                   {"driver": "raw", "node-name": "rc", "file": {"driver": "file", "filename": "c.img"}},
                   {"driver": "raw", "node-name": "rd", "file": {"driver": "file", "filename": "d.img"}},
                   {"driver": "throttle", "node-name": "ta", "throttle-group": "solo", "file": "ra"},
                   {"driver": "throttle", "node-name": "tb", "throttle-group": "shared", "file": "rb"},
                   {"driver": "throttle", "node-name": "tc", "throttle-group": "shared", "file": "rc"},
                   {"driver": "throttle", "node-name": "td", "throttle-group": "live", "file": "rd"},
                   {"driver": "throttle", "node-name": "te", "throttle-group": "burst",
                    "file": {"driver": "raw", "file": {"driver": "file", "filename": "e.img"}}}],
                 "exports": [{"id": "solo", "node-name": "ta", "writable": true},
                             {"id": "shared1", "node-name": "tb", "writable": true},
                             {"id": "shared2", "node-name": "tc", "writable": true},
                             {"id": "live", "node-name": "td", "writable": true},
                             {"id": "burst", "node-name": "te", "writable": true}]}
                """);
        daemon = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
    }

    @AfterAll
    static void unmount() {
        if (daemon != null) {
            daemon.close();
        }
    }

    /** Seconds a direct dd of {@code count} 64 KiB blocks to an export takes. */
    private static double ddSeconds(String export, int count) {
        long t0 = System.nanoTime();
        sh("dd if=/dev/zero of=" + daemon.disk(export) + " bs=64k count=" + count
                + " oflag=direct conv=notrunc status=none").ok();
        return (System.nanoTime() - t0) / 1e9;
    }

    /**
     * Within 5 % of the expected time; slower by up to 150 ms more, which is what starting dd
     * takes on a loaded machine (the throttle can make a run slow, never early).
     */
    private static boolean withinFivePercent(double seconds, double expected) {
        return seconds >= 0.95 * expected && seconds <= 1.05 * expected + 0.15;
    }

    private static double expectedSeconds(long bytes, long rate) {
        return (bytes - rate / 10.0 - 65536) / rate;
    }

    @Test
    void ddRateIsWithinFivePercentOfTheLimit() {
        double seconds = ddSeconds("solo", 256);
        double expected = expectedSeconds(16 * MIB, 4 * MIB);
        assertTrue(withinFivePercent(seconds, expected),
                "16 MiB at 4 MiB/s took " + seconds + " s, expected " + expected + " s");
    }

    @Test
    void aBurstGoesAtOnceThenTheSteadyRate() {
        // 12 MiB with an 8 MiB burst at 2 MiB/s: the burst at once, the other 4 MiB in 2 s (not 6 s).
        double seconds = ddSeconds("burst", 192);
        double expected = (12 * MIB - 8 * MIB - 65536) / (2.0 * MIB);
        assertTrue(withinFivePercent(seconds, expected),
                "12 MiB took " + seconds + " s, expected " + expected + " s");
    }

    @Test
    void twoExportsShareTheirGroupsBudget() throws Exception {
        CompletableFuture<Double> one = CompletableFuture.supplyAsync(() -> ddSeconds("shared1", 128));
        CompletableFuture<Double> two = CompletableFuture.supplyAsync(() -> ddSeconds("shared2", 128));
        double a = one.get();
        double b = two.get();
        // 2 × 8 MiB through one 4 MiB/s budget: both take about as long as 16 MiB alone would.
        double expected = expectedSeconds(16 * MIB, 4 * MIB);
        assertTrue(Math.abs(a - expected) <= 0.1 * expected && Math.abs(b - expected) <= 0.1 * expected,
                "the exports took " + a + " s and " + b + " s, expected both about " + expected + " s");
        String members = Files.readString(daemon.control("throttle-groups/shared/members"));
        assertEquals("tb\ntc\n", members);
    }

    /**
     * SIGTERM while dd waits behind a tiny limit: the drain lets it go and the mount exits
     * cleanly, after the mount's grace period for open files (10 s), not after the limit's.
     */
    @Test
    void stopDoesNotWaitForTheLimits() throws Exception {
        Path sub = Files.createDirectories(dir.resolve("stop"));
        Files.writeString(sub.resolve("config.json"), """
                {"create": [{"filename": "s.img", "format": "raw", "size": "16M"}],
                 "objects": [{"qom-type": "throttle-group", "id": "slow", "limits": {"bps-total": 1000}}],
                 "blockdev": [{"driver": "throttle", "node-name": "ts", "throttle-group": "slow",
                               "file": {"driver": "raw", "file": {"driver": "file", "filename": "s.img"}}}],
                 "exports": [{"id": "slow", "node-name": "ts", "writable": true}]}
                """);
        try (MountedDaemon slow = MountedDaemon.mount(sub.resolve("config.json"), sub.resolve("mnt"))) {
            Process dd = new ProcessBuilder("dd", "if=/dev/zero", "of=" + slow.disk("slow"), "bs=64k", "count=16",
                    "oflag=direct", "conv=notrunc", "status=none").start();
            Thread.sleep(500);
            assertTrue(dd.isAlive(), "1 MiB at 1000 B/s takes a quarter of an hour");
            long t0 = System.nanoTime();
            assertEquals(0, slow.stop());
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertTrue(seconds < 20, "stopped without waiting for the limit: " + seconds + " s");
            dd.waitFor();
        }
    }

    @Test
    void limitsChangeAtRunTimeThroughControlFiles() throws Exception {
        Path bps = daemon.control("throttle-groups/live/bps-total");
        assertEquals("1048576\n", Files.readString(bps));
        // 6 MiB at 1 MiB/s would take about 6 s; the limit is raised after one.
        long t0 = System.nanoTime();
        CompletableFuture<Double> dd = CompletableFuture.supplyAsync(() -> ddSeconds("live", 96));
        Thread.sleep(1000);
        sh("echo 100M > " + bps).ok();
        double seconds = dd.get();
        assertTrue(seconds < 2.5, "dd finished soon after the limit went up: " + seconds + " s");
        assertTrue((System.nanoTime() - t0) / 1e9 >= 1.0);
        assertEquals("104857600\n", Files.readString(bps));

        var refused = sh("echo 5 > " + daemon.control("throttle-groups/live/bps-total-max"));
        assertNotEquals(0, refused.exitCode());
        assertTrue(refused.stderr().contains("Invalid argument"), refused.stderr());
        assertEquals("bps-total-max: throttle group 'live': 'bps-total-max' value 5 is lower than 'bps-total' "
                + "104857600\n", Files.readString(daemon.control("throttle-groups/live/last-error")));
        assertEquals("104857600\n", Files.readString(bps));

        sh("echo 0 > " + bps).ok();
        assertTrue(ddSeconds("live", 256) < 3, "no limit at all");
        String stats = Files.readString(daemon.control("live/stats"));
        assertTrue(stats.matches("(?s).*td\\.throttled-requests [1-9].*"), stats);
    }
}
