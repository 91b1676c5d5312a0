package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.diskstack.core.testing.Await;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Throttle groups through the mount: the rate dd sees, a group shared by two exports, and limits
 * changed at run time through {@code .control/throttle-groups/ID/}. Only the rate test judges
 * time; the others use limits so small that a request visibly waits (the {@code throttled-now}
 * counter) until the test lifts them.
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
                             {"qom-type": "throttle-group", "id": "shared", "limits": {"bps-write": 1000}},
                             {"qom-type": "throttle-group", "id": "live", "limits": {"bps-total": 1000}},
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

    /** A direct dd of {@code count} 64 KiB blocks to an export, running. */
    private static Process dd(MountedDaemon d, String export, int count) throws Exception {
        return new ProcessBuilder("dd", "if=/dev/zero", "of=" + d.disk(export), "bs=64k", "count=" + count,
                "oflag=direct", "conv=notrunc", "status=none").redirectErrorStream(true).start();
    }

    /** Waits until a request to the export waits for its throttle node {@code node}'s limits. */
    private static void awaitThrottled(MountedDaemon d, String export, String node) {
        Await.until("a request to " + export + " to wait for the limits",
                () -> d.stat(export, node + ".throttled-now") >= 1);
    }

    private static void awaitExit(Process p, String what) throws Exception {
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(what + " still running after 60 s");
        }
        assertEquals(0, p.exitValue(), what + ": " + new String(p.getInputStream().readAllBytes()));
    }

    /**
     * The one test here that judges time (the group tests run on a clock they move): dd sees
     * the limit, within 30 %, on whatever machine runs it.
     */
    @Test
    void ddRateIsWithinThirtyPercentOfTheLimit() {
        double seconds = ddSeconds("solo", 256);
        // The bucket lets a tenth of a second of the rate, and the request that fills it, through at once.
        double expected = (16 * MIB - 4 * MIB / 10.0 - 65536) / (4 * MIB);
        assertTrue(Math.abs(seconds - expected) <= 0.3 * expected,
                "16 MiB at 4 MiB/s took " + seconds + " s, expected " + expected + " s");
    }

    @Test
    void burstLimitsFromTheConfigReachTheGroup() throws Exception {
        assertEquals("2097152\n", Files.readString(daemon.control("throttle-groups/burst/bps-total")));
        assertEquals("8388608\n", Files.readString(daemon.control("throttle-groups/burst/bps-total-max")));
        assertEquals("te\n", Files.readString(daemon.control("throttle-groups/burst/members")));
    }

    /**
     * Two exports in one group share its buckets: a write to one fills them, and a write to the
     * other then waits, until the limit goes.
     */
    @Test
    void twoExportsShareTheirGroupsBudget() throws Exception {
        assertEquals("tb\ntc\n", Files.readString(daemon.control("throttle-groups/shared/members")));
        sh("dd if=/dev/zero of=" + daemon.disk("shared1") + " bs=64k count=1 oflag=direct conv=notrunc status=none")
                .ok();
        Process second = dd(daemon, "shared2", 1);
        try {
            awaitThrottled(daemon, "shared2", "tc");
            assertTrue(second.isAlive(), "64 KiB more at 1000 B/s waits a minute");
            sh("echo 0 > " + daemon.control("throttle-groups/shared/bps-write")).ok();
            awaitExit(second, "dd to shared2 once the limit went");
        } finally {
            second.destroyForcibly();
        }
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
            Process dd = dd(slow, "slow", 16);
            awaitThrottled(slow, "slow", "ts");
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
        assertEquals("1000\n", Files.readString(bps));
        // 1 MiB at 1000 B/s would take a quarter of an hour: raising the limit lets dd finish.
        Process dd = dd(daemon, "live", 16);
        try {
            awaitThrottled(daemon, "live", "td");
            sh("echo 100M > " + bps).ok();
            awaitExit(dd, "dd once the limit went up");
        } finally {
            dd.destroyForcibly();
        }
        assertEquals("104857600\n", Files.readString(bps));

        var refused = sh("echo 5 > " + daemon.control("throttle-groups/live/bps-total-max"));
        assertNotEquals(0, refused.exitCode());
        assertTrue(refused.stderr().contains("Invalid argument"), refused.stderr());
        assertEquals("bps-total-max: throttle group 'live': 'bps-total-max' value 5 is lower than 'bps-total' "
                + "104857600\n", Files.readString(daemon.control("throttle-groups/live/last-error")));
        assertEquals("104857600\n", Files.readString(bps));

        sh("echo 0 > " + bps).ok();
        assertEquals("0\n", Files.readString(bps));
        assertTrue(daemon.stat("live", "td.throttled-requests") >= 1);
    }
}
