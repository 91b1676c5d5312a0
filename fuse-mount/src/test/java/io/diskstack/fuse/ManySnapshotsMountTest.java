package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.fuse.testing.SeedStack;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A snapshot a day for a hundred days (issue 16): 100 external snapshots in a row on the seed
 * stack while fio writes and verifies. Names stay bounded, every image is clean, a remount opens
 * the whole chain and reads the same, and a commit of the first snapshot merges the lot back.
 */
class ManySnapshotsMountTest {
    @TempDir
    Path dir;

    @Test
    void aHundredExternalSnapshotsThenACommitOfTheLot() throws Exception {
        Shell.requireTool("fio");
        Path config = SeedStack.create(dir, "32M");
        Path shown = dir.resolve("shown.raw");
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Path stop = dir.resolve("stop");
            // fio writes and verifies the whole disk, round after round, until the snapshots are done
            Process fio = new ProcessBuilder("bash", "-c", "while [ ! -e " + stop + " ]; do fio --name=verify "
                    + "--filename=" + d.disk("disk0") + " --rw=randwrite --bs=16k --size=32M --direct=1 "
                    + "--ioengine=psync --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse "
                    + "|| exit 1; done").redirectErrorStream(true).start();
            for (int i = 1; i <= 100; i++) {
                Shell.Result r = sh("echo day" + i + " > " + d.control("disk0/snapshot-external"));
                assertEquals(0, r.exitCode(), "snapshot " + i + ": " + r.stderr() + " "
                        + Files.readString(d.control("disk0/last-error")));
            }
            Files.createFile(stop);
            String out = new String(fio.getInputStream().readAllBytes());
            assertEquals(0, fio.waitFor(), "fio: " + out);
            sh("dd if=" + d.disk("disk0") + " of=" + shown + " bs=1M status=none").ok();
            assertEquals(0, d.unmount());
        }
        Pattern names = Pattern.compile("\"node-name\" : \"([^\"]+)\"");
        Matcher m = names.matcher(Files.readString(config));
        int nodes = 0;
        while (m.find()) {
            assertTrue(m.group(1).length() <= 31, m.group(1));
            nodes++;
        }
        assertTrue(nodes > 600, "3 overlays and 3 file nodes per snapshot: " + nodes);
        assertTrue(Files.exists(dir.resolve("c0-day100.qcow2")), "file names stay bounded: c0-day100.qcow2");
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".qcow2")).toList()) {
                run("qemu-img", "check", "-q", f.toString()).ok();
            }
        }
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("cmp " + shown + " " + d.disk("disk0")).ok();
            sh("echo day1 > " + d.control("disk0/commit")).ok();
            Shell.Result waited = MountedDaemon.runToCompletion(List.of("job", "wait", d.mountpoint().toString(),
                    "commit-disk0"), Map.of());
            assertEquals(0, waited.exitCode(), waited.stderr());
            sh("cmp " + shown + " " + d.disk("disk0")).ok();
            assertFalse(Files.readString(d.control("graph")).contains("day"));
            assertEquals(0, d.unmount());
        }
        assertFalse(Files.readString(config).contains("day"), "the config names no overlay");
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "check", "-q", dir.resolve("c" + i + ".qcow2").toString()).ok();
        }
        run("qemu-img", "compare", "-q", dir.resolve("c0.qcow2").toString(), dir.resolve("c2.qcow2").toString()).ok();
    }
}
