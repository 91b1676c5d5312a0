package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * More clients wait behind a tiny throttle limit than the mount has FUSE threads (256): the
 * control files and a second, unthrottled export must still answer at once, because an export
 * holds only a bounded number of FUSE threads and parks the rest of its requests.
 */
class ThrottleSaturationMountTest {
    private static final int CLIENTS = 320;

    @TempDir
    Path dir;

    @Test
    void aSaturatedThrottledExportLeavesTheRestOfTheMountResponsive() throws Exception {
        Shell.requireTool("dd");
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "slow.img", "format": "raw", "size": "16M"},
                            {"filename": "fast.img", "format": "raw", "size": "16M"}],
                 "objects": [{"qom-type": "throttle-group", "id": "crawl", "limits": {"iops-total": 2}}],
                 "blockdev": [
                   {"driver": "raw", "node-name": "rs", "file": {"driver": "file", "filename": "slow.img"}},
                   {"driver": "throttle", "node-name": "ts", "throttle-group": "crawl", "file": "rs"},
                   {"driver": "raw", "node-name": "rf", "file": {"driver": "file", "filename": "fast.img"}}],
                 "exports": [{"id": "slow", "node-name": "ts", "writable": true},
                             {"id": "fast", "node-name": "rf", "writable": true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"))) {
            // Each client is its own process doing synchronous direct reads: one request each in
            // flight at any time, CLIENTS in all, at 2 requests a second. (Reads, because the
            // kernel lets only one direct write per file in at a time without
            // FOPEN_PARALLEL_DIRECT_WRITES, which libfuse2 cannot set: clients queue in the kernel.)
            Process clients = new ProcessBuilder("bash", "-c",
                    "for i in $(seq " + CLIENTS + "); do dd if=" + d.disk("slow")
                            + " of=/dev/null bs=4k count=50 skip=$i iflag=direct status=none & done; wait")
                    .redirectErrorStream(true).redirectOutput(dir.resolve("clients.log").toFile()).start();
            try {
                // Let them all start: the disk's lane threads wait in the throttle, one per CPU (a
                // throttle serves one request at a time, so more threads would only wait longer),
                // and the rest of its requests wait in the lane.
                Await.until("all " + CLIENTS + " clients to start", () -> countClients(clients) == CLIENTS);
                Await.until("the slow export's lane threads to wait for the limit",
                        () -> d.stat("slow", "ts.throttled-now") >= 1);
                assertTrue(d.stat("slow", "ts.throttled-now") <= FuseSession.LANE_RUNNERS,
                        "requests waiting in the throttle: " + d.stat("slow", "ts.throttled-now"));
                assertEquals(CLIENTS, countClients(clients), "every client is still waiting behind the limit");

                long t0 = System.nanoTime();
                Shell.Result graph = Shell.run(java.time.Duration.ofSeconds(15), dir,
                        List.of("timeout", "10", "cat", d.control("graph").toString()));
                double seconds = (System.nanoTime() - t0) / 1e9;
                assertEquals(0, graph.exitCode(), "cat .control/graph failed or hung: " + graph.stderr());
                assertTrue(graph.stdout().contains("ts"), graph.stdout());
                assertTrue(seconds < 3, "cat .control/graph took " + seconds + " s");

                t0 = System.nanoTime();
                Shell.Result write = Shell.run(java.time.Duration.ofSeconds(15), dir, List.of("timeout", "10", "dd",
                        "if=/dev/zero", "of=" + d.disk("fast"), "bs=1M", "count=4", "oflag=direct",
                        "conv=notrunc", "status=none"));
                Shell.Result read = Shell.run(java.time.Duration.ofSeconds(15), dir, List.of("timeout", "10", "dd",
                        "if=" + d.disk("fast"), "of=/dev/null", "bs=1M", "count=4", "iflag=direct", "status=none"));
                seconds = (System.nanoTime() - t0) / 1e9;
                assertEquals(0, write.exitCode(), "write to the unthrottled export: " + write.stderr());
                assertEquals(0, read.exitCode(), "read from the unthrottled export: " + read.stderr());
                assertTrue(seconds < 3, "4 MiB to and from the unthrottled export took " + seconds + " s");

                // The throttled export still works, at its rate: lift the limit and the clients finish.
                Shell.Result lift = Shell.run(java.time.Duration.ofSeconds(15), dir, List.of("timeout", "10", "sh", "-c",
                        "echo 0 > " + d.control("throttle-groups/crawl/iops-total")));
                assertEquals(0, lift.exitCode(), "lifting the limit: " + lift.stderr());
                assertTrue(clients.waitFor(60, TimeUnit.SECONDS), "the clients finished once the limit went");
                assertEquals(0, clients.exitValue(), Files.readString(dir.resolve("clients.log")));
                String stats = Files.readString(d.control("slow/stats"));
                assertTrue(stats.contains("reads " + (CLIENTS * 50) + "\n"), stats);
            } finally {
                clients.descendants().forEach(ProcessHandle::destroyForcibly);
                clients.destroyForcibly();
            }
            assertEquals(0, d.stop());
        }
    }

    /** The dd processes the clients' shell has running. */
    private static int countClients(Process clients) {
        return (int) clients.children()
                .filter(p -> p.info().command().map(c -> c.endsWith("/dd")).orElse(false))
                .count();
    }
}
