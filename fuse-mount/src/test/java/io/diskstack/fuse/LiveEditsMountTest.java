package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Live graph edits through the mount's control files, while the disk runs: a throttle goes in
 * above a disk being read and comes out again, copy-on-read goes in and out, and a quorum gets a
 * new image in place of a dead disk and rebuilds it while fio writes and verifies.
 */
class LiveEditsMountTest {
    @TempDir
    Path dir;

    private static Shell.Result echo(Path file, String text) {
        return sh("echo '" + text + "' > " + file);
    }

    /**
     * The throttle's limit shows in fio's per-second read rate within a second of the edit (within
     * 10 %), no read fails, and the rate comes back once the throttle is taken out; the config
     * says so after each edit, so a remount builds the graph the edits left.
     */
    @Test
    void aThrottleGoesInAboveARunningDiskAndComesOutAgain() throws Exception {
        Shell.requireTool("fio");
        run("qemu-img", "create", "-q", "-f", "raw", dir.resolve("r.img").toString(), "256M").ok();
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "raw", "node-name": "r0", "file": {"driver": "file", "filename": "r.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """);
        Path log = dir.resolve("bw");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Process fio = new ProcessBuilder("fio", "--name=reader", "--filename=" + d.disk("disk0"), "--rw=read",
                    "--bs=64k", "--direct=1", "--ioengine=psync", "--time_based", "--runtime=9",
                    "--write_bw_log=" + log, "--log_avg_msec=1000", "--log_unix_epoch=1", "--output-format=terse")
                    .redirectErrorStream(true).start();
            Thread.sleep(2000);
            echo(d.control("object-add"), "qom-type=throttle-group,id=tg1,limits.bps-total=20M").ok();
            echo(d.control("blockdev-add"), "driver=throttle,node-name=t1,throttle-group=tg1,file=r0").ok();
            echo(d.control("blockdev-replace"), "export=disk0,new-child=t1").ok();
            long inserted = System.currentTimeMillis();
            String written = Files.readString(config);
            assertTrue(written.contains("\"node-name\" : \"t1\"") && written.contains("tg1"), written);
            Thread.sleep(4000);
            echo(d.control("blockdev-replace"), "export=disk0,new-child=r0").ok();
            long removed = System.currentTimeMillis();
            echo(d.control("blockdev-del"), "t1").ok();
            echo(d.control("object-del"), "tg1").ok();
            String out = new String(fio.getInputStream().readAllBytes());
            assertEquals(0, fio.waitFor(), "no read failed: " + out);
            // fio's log: the time (Unix epoch, ms) and the KiB/s over the second before it
            List<long[]> seconds = bandwidth(Path.of(log + "_bw.1.log"));
            List<Long> throttled = new ArrayList<>();
            List<Long> after = new ArrayList<>();
            for (long[] s : seconds) {
                // whole seconds after the insertion and before the removal
                if (s[0] - 1000 >= inserted + 100 && s[0] <= removed) {
                    throttled.add(s[1]);
                } else if (s[0] - 1000 >= removed + 100) {
                    after.add(s[1]);
                }
            }
            assertFalse(throttled.isEmpty(), "fio logged seconds while throttled: " + seconds);
            // the rate over the throttled seconds is the limit within 10 %; each second is near it
            // (a second's sample can catch a burst of the leaky bucket, or a busy host)
            double mean = throttled.stream().mapToLong(Long::longValue).average().orElseThrow();
            assertTrue(Math.abs(mean - 20480) <= 2048, "read " + mean + " KiB/s throttled to 20 MiB/s: " + throttled);
            for (long kib : throttled) {
                assertTrue(Math.abs(kib - 20480) <= 5120, "a throttled second read " + kib + " KiB/s: " + throttled);
            }
            assertFalse(after.isEmpty(), "fio logged seconds after the throttle left: " + seconds);
            assertTrue(after.stream().allMatch(kib -> kib > 2 * 20480), "the rate came back: " + after);
            assertEquals(0, d.unmount());
        }
        String written = Files.readString(config);
        assertFalse(written.contains("t1") || written.contains("tg1"), written);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            assertTrue(Files.readString(d.control("graph")).startsWith("disk0  export  writable  256 MiB\n└── r0  raw"));
        }
    }

    private static List<long[]> bandwidth(Path log) throws Exception {
        List<long[]> out = new ArrayList<>();
        for (String line : Files.readAllLines(log)) {
            String[] f = line.split(",\\s*");
            out.add(new long[] {Long.parseLong(f[0]), Long.parseLong(f[1])});
        }
        return out;
    }

    /** Copy-on-read inserted above an overlay while it is read, then removed: the overlay holds what was read. */
    @Test
    void copyOnReadGoesInWhileReadsRunAndTheTopImageKeepsWhatWasRead() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("base.qcow2").toString(), "32M").ok();
        run("qemu-io", "-f", "qcow2", "-c", "write -P 9 0 16M", dir.resolve("base.qcow2").toString()).ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
                dir.resolve("top.qcow2").toString()).ok();
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "qcow2", "node-name": "top", "file": {"driver": "file", "filename": "top.qcow2"}}],
                 "exports": [{"id": "disk0", "node-name": "top", "writable": true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Process reader = new ProcessBuilder("bash", "-c", "for i in 1 2 3 4; do dd if=" + d.disk("disk0")
                    + " of=/dev/null bs=64k count=256 iflag=direct status=none || exit 1; done").start();
            echo(d.control("blockdev-add"), "driver=copy-on-read,node-name=cor0,file=top").ok();
            echo(d.control("blockdev-replace"), "export=disk0,new-child=cor0").ok();
            assertEquals(0, reader.waitFor());
            sh("dd if=" + d.disk("disk0") + " of=/dev/null bs=64k count=256 iflag=direct status=none").ok();
            echo(d.control("blockdev-replace"), "export=disk0,new-child=top").ok();
            echo(d.control("blockdev-del"), "cor0").ok();
            assertFalse(Files.readString(d.control("graph")).contains("cor0"));
            assertEquals(0, d.unmount());
        }
        // the first 16 MiB, read through copy-on-read, now live in the top image itself
        Shell.Result map = run("qemu-img", "map", "--output=json", dir.resolve("top.qcow2").toString()).ok();
        long inTop = 0;
        for (var extent : new com.fasterxml.jackson.databind.ObjectMapper().readTree(map.stdout())) {
            if (extent.get("depth").asInt() == 0 && extent.get("data").asBoolean()) {
                inTop += extent.get("length").asLong();
            }
        }
        assertEquals(16L << 20, inTop, map.stdout());
    }

    /**
     * A 3-way quorum loses one disk (every request on it fails), gets an empty image in its place
     * while fio writes and verifies, and ends with three equal children: a RAID-1 rebuild.
     */
    @Test
    void aQuorumRebuildsOntoANewImageWhileFioVerifies() throws Exception {
        Shell.requireTool("fio");
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("c" + i + ".qcow2").toString(), "32M").ok();
        }
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "img0", "file": {"driver": "file", "filename": "c0.qcow2"}},
                   {"driver": "qcow2", "node-name": "img1", "file": {"driver": "file", "filename": "c1.qcow2"}},
                   {"driver": "qcow2", "node-name": "img2", "file": {"driver": "file", "filename": "c2.qcow2"}},
                   {"driver": "blkdebug", "node-name": "dead1", "file": "img1",
                    "inject-error": [{"iotype": "read+write+write-zeroes+flush+block-status", "errno": "EIO"}]},
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "dead1", "img2"]}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true}]}
                """);
        Path shown = dir.resolve("shown.raw");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("head -c 16M /dev/urandom | dd of=" + d.disk("disk0") + " bs=1M conv=notrunc,fsync status=none").ok();
            Process fio = new ProcessBuilder("fio", "--name=verify", "--filename=" + d.disk("disk0"),
                    "--rw=randwrite", "--bs=16k", "--offset=16M", "--size=16M", "--direct=1", "--ioengine=psync",
                    "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=terse")
                    .redirectErrorStream(true).start();
            run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("new1.qcow2").toString(), "32M").ok();
            echo(d.control("blockdev-add"), "driver=qcow2,node-name=new1,file.driver=file,file.filename=new1.qcow2")
                    .ok();
            echo(d.control("blockdev-replace"), "parent=q0,child=children.1,new-child=new1").ok();
            Shell.Result waited = MountedDaemon.runToCompletion(List.of("job", "wait", d.mountpoint().toString(),
                    "resync-q0"), Map.of());
            assertEquals(0, waited.exitCode(), waited.stderr() + d.log());
            String out = new String(fio.getInputStream().readAllBytes());
            assertEquals(0, fio.waitFor(), "fio verify: " + out);
            String children = Files.readString(d.control("nodes/q0/children"));
            assertTrue(children.contains("children.1 new1 in-sync"), children);
            sh("dd if=" + d.disk("disk0") + " of=" + shown + " bs=1M status=none").ok();
            assertEquals(0, d.unmount());
        }
        assertTrue(Files.readString(config).contains("\"img0\", \"new1\", \"img2\""), Files.readString(config));
        for (String sibling : List.of("c0.qcow2", "c2.qcow2")) {
            run("qemu-img", "check", "-q", dir.resolve(sibling).toString()).ok();
            run("qemu-img", "compare", "-q", dir.resolve(sibling).toString(), dir.resolve("new1.qcow2").toString())
                    .ok();
        }
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("cmp " + shown + " " + d.disk("disk0")).ok();
        }
    }
}
