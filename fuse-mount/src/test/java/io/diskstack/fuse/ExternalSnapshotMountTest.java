package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code .control/DISK/snapshot-external}: qcow2 overlays below the filters, checked with
 * qemu-img, recorded in the config so a remount opens them, and all or nothing.
 */
class ExternalSnapshotMountTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Shell.requireTool("qemu-img");
    }

    /** Writes {@code text} to a control file the way a shell user does; the result carries the errno text. */
    private static Shell.Result echo(Path control, String text) {
        return sh("echo '" + text + "' > " + control);
    }

    private static void dd(Path from, Path to, int seekMiB) {
        sh("dd if=" + from + " of=" + to + " bs=1M seek=" + seekMiB + " conv=notrunc status=none").ok();
    }

    @Test
    void rawDiskGetsAnOverlayTheConfigRecordsAndARemountOpens() throws Exception {
        Path base = dir.resolve("disk0.img");
        run("qemu-img", "create", "-q", "-f", "raw", base.toString(), "4M").ok();
        run("qemu-img", "create", "-q", "-f", "raw", dir.resolve("disk1.img").toString(), "1M").ok();
        Path a = dir.resolve("a.bin");
        Path b = dir.resolve("b.bin");
        sh("head -c 4M /dev/urandom > " + a + " && head -c 1M /dev/urandom > " + b).ok();
        Path expected = dir.resolve("expected.bin");
        Files.copy(a, expected);
        dd(b, expected, 1);
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "file", "node-name": "f0", "filename": "disk0.img"},
                              {"driver": "raw", "node-name": "r0", "file": "f0"},
                              {"driver": "raw", "node-name": "r1", "file": {"driver": "file", "filename": "disk1.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true},
                             {"id": "ro1", "node-name": "r1"}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            Path control = d.control("disk0/snapshot-external");
            assertEquals("", Files.readString(control));
            dd(a, d.disk("disk0"), 0);
            echo(control, "s1").ok();
            dd(b, d.disk("disk0"), 1);
            String made = Files.readString(control);
            assertTrue(made.startsWith("s1 r0-s1 " + dir.resolve("disk0-s1.qcow2")), made);
            String graph = Files.readString(d.control("graph"));
            assertTrue(graph.contains("── r0-s1  qcow2") && graph.contains("── backing: r0  raw"), graph);

            Shell.Result bad = echo(control, "a/b");
            assertTrue(bad.exitCode() != 0 && bad.stderr().contains("Invalid argument"), bad.stderr());
            assertTrue(Files.readString(d.control("disk0/last-error")).contains("snapshot name 'a/b'"));
            bad = echo(control, "");
            assertTrue(bad.exitCode() != 0 && bad.stderr().contains("Invalid argument"), bad.stderr());
            assertTrue(Files.readString(d.control("disk0/last-error")).contains("empty"));
            bad = echo(d.control("ro1/snapshot-external"), "s1");
            assertTrue(bad.exitCode() != 0 && bad.stderr().contains("Read-only file system"), bad.stderr());
            assertTrue(Files.readString(d.control("ro1/last-error")).contains("read-only"));
            assertEquals(0, d.unmount());
        }
        // the base holds what was there before the snapshot, and nothing after it
        sh("cmp " + base + " " + a).ok();
        Path overlay = dir.resolve("disk0-s1.qcow2");
        JsonNode info = JSON.readTree(run("qemu-img", "info", "--output=json", overlay.toString()).ok().stdout());
        assertEquals(base.toString(), info.get("full-backing-filename").asText());
        assertEquals("raw", info.get("backing-filename-format").asText());
        assertEquals(4L << 20, info.get("virtual-size").asLong());
        Shell.Result check = run("qemu-img", "check", overlay.toString());
        assertEquals(0, check.exitCode(), check.stdout() + check.stderr());
        Path converted = dir.resolve("converted.raw");
        run("qemu-img", "convert", "-O", "raw", overlay.toString(), converted.toString()).ok();
        sh("cmp " + converted + " " + expected).ok();

        JsonNode written = JSON.readTree(config.toFile());
        assertEquals("r0-s1", written.get("exports").get(0).get("node-name").asText());
        assertEquals("r1", written.get("exports").get(1).get("node-name").asText());
        String devs = written.get("blockdev").toString();
        assertTrue(devs.contains("{\"driver\":\"file\",\"node-name\":\"r0-s1-file\",\"filename\":\"disk0-s1.qcow2\"}")
                && devs.contains("{\"driver\":\"qcow2\",\"node-name\":\"r0-s1\",\"file\":\"r0-s1-file\",\"backing\":\"r0\"}")
                && devs.contains("\"node-name\":\"r0\",\"file\":\"f0\",\"read-only\":true"), devs);

        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("cmp " + d.disk("disk0") + " " + expected).ok();
            String graph = Files.readString(d.control("graph"));
            assertTrue(graph.contains("── r0-s1  qcow2") && graph.contains("── backing: r0  raw"), graph);
            assertEquals("", Files.readString(d.control("disk0/snapshot-external")));
            assertEquals(0, d.unmount());
        }
        sh("cmp " + base + " " + a).ok();
    }

    private Path seedStack() throws Exception {
        StringBuilder children = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("c" + i + ".qcow2").toString(), "4M").ok();
            children.append("{\"driver\": \"qcow2\", \"node-name\": \"img").append(i)
                    .append("\", \"file\": {\"driver\": \"file\", \"filename\": \"c").append(i).append(".qcow2\"}},\n");
        }
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"objects": [{"qom-type": "throttle-group", "id": "tg0", "limits": {"iops-total": 100000}}],
                 "blockdev": [%s
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "img1", "img2"]},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "q0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """.formatted(children));
        return config;
    }

    @Test
    void seedStackGetsOneOverlayPerQuorumChildBelowTheFilters() throws Exception {
        Path config = seedStack();
        Path a = dir.resolve("a.bin");
        Path b = dir.resolve("b.bin");
        sh("head -c 2M /dev/urandom > " + a + " && head -c 1M /dev/urandom > " + b).ok();
        Path expected = dir.resolve("expected.bin");
        sh("head -c 4M /dev/zero > " + expected).ok();
        dd(a, expected, 0);
        Path before = dir.resolve("before.bin");
        Files.copy(expected, before);
        dd(b, expected, 1);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            dd(a, d.disk("disk0"), 0);
            echo(d.control("disk0/snapshot-external"), "s1").ok();
            dd(b, d.disk("disk0"), 1);
            String graph = Files.readString(d.control("graph"));
            for (int i = 0; i < 3; i++) {
                assertTrue(graph.contains("── children." + i + ": img" + i + "-s1  qcow2")
                        && graph.contains("── backing: img" + i + "  qcow2"), graph);
            }
            assertTrue(graph.startsWith("disk0  export  writable  4 MiB\n└── t0  throttle"), graph);
            assertTrue(graph.contains("    └── file: q0  quorum"), graph);
            assertFalse(graph.contains("not exported"), graph);
            sh("cmp " + d.disk("disk0") + " " + expected).ok();
            assertEquals(3, Files.readString(d.control("disk0/snapshot-external")).lines().count());
            // the frozen bases are backing files now: a backup reads them while the mount runs
            for (int i = 0; i < 3; i++) {
                run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", dir.resolve("c" + i + ".qcow2").toString(),
                        before.toString()).ok();
            }
            assertEquals(0, d.unmount());
        }
        for (int i = 0; i < 3; i++) {
            Path baseImage = dir.resolve("c" + i + ".qcow2");
            Path overlay = dir.resolve("c" + i + "-s1.qcow2");
            run("qemu-img", "check", "-q", baseImage.toString()).ok();
            run("qemu-img", "check", "-q", overlay.toString()).ok();
            run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", baseImage.toString(), before.toString()).ok();
            run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", overlay.toString(), expected.toString()).ok();
            JsonNode info = JSON.readTree(run("qemu-img", "info", "--output=json", overlay.toString()).ok().stdout());
            assertEquals(baseImage.toString(), info.get("full-backing-filename").asText());
            assertEquals("qcow2", info.get("backing-filename-format").asText());
        }
        JsonNode written = JSON.readTree(config.toFile());
        assertEquals("[\"img0-s1\",\"img1-s1\",\"img2-s1\"]", written.get("blockdev").get(9).get("children").toString(),
                written.toString());
        assertEquals("t0", written.get("exports").get(0).get("node-name").asText());
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("cmp " + d.disk("disk0") + " " + expected).ok();
            assertEquals(0, d.unmount());
        }
    }

    @Test
    void aFailureOnTheSecondChildLeavesNoFileAndChangesNothing() throws Exception {
        Path config = seedStack();
        Path taken = dir.resolve("c1-s1.qcow2");
        Files.writeString(taken, "not mine");
        byte[] configBefore = Files.readAllBytes(config);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            String graph = Files.readString(d.control("graph"));
            Shell.Result r = echo(d.control("disk0/snapshot-external"), "s1");
            assertNotEquals(0, r.exitCode());
            assertTrue(r.stderr().contains("File exists"), r.stderr());
            String error = Files.readString(d.control("disk0/last-error"));
            assertTrue(error.startsWith("snapshot-external: overlay '" + taken + "' for node 'img1' already exists"),
                    error);
            assertEquals(graph, Files.readString(d.control("graph")));
            assertEquals("", Files.readString(d.control("disk0/snapshot-external")));
            assertFalse(Files.exists(dir.resolve("c0-s1.qcow2")));
            assertFalse(Files.exists(dir.resolve("c2-s1.qcow2")));
            assertEquals("not mine", Files.readString(taken));
            assertArrayEquals(configBefore, Files.readAllBytes(config));
            // the disk still works, writing to the bases
            sh("head -c 1M /dev/urandom > " + dir.resolve("x.bin")).ok();
            dd(dir.resolve("x.bin"), d.disk("disk0"), 0);
            assertEquals(0, d.unmount());
        }
        assertEquals(List.of("c0.qcow2", "c1-s1.qcow2", "c1.qcow2", "c2.qcow2", "config.json", "mnt", "x.bin"),
                sh("ls -A " + dir).ok().stdout().lines().toList());
        Path x4 = dir.resolve("x4.bin");
        sh("cp " + dir.resolve("x.bin") + " " + x4 + " && truncate -s 4M " + x4).ok();
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", dir.resolve("c" + i + ".qcow2").toString(),
                    x4.toString()).ok();
        }
    }

    /**
     * The bases' first flush runs beside making the overlays: when it fails, the snapshot fails
     * only after it ended, and leaves no overlay, the config as it was and the disk working.
     */
    @Test
    void aFailingFirstFlushLeavesNoOverlayAndChangesNothing() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("c0.qcow2").toString(), "4M").ok();
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "qcow2", "node-name": "img0", "file": {"driver": "blkdebug",
                               "inject-error": [{"errno": "EIO", "iotype": "flush", "once": true}],
                               "file": {"driver": "file", "filename": "c0.qcow2"}}}],
                 "exports": [{"id": "disk0", "node-name": "img0", "writable": true}]}
                """);
        byte[] configBefore = Files.readAllBytes(config);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            String graph = Files.readString(d.control("graph"));
            Shell.Result r = echo(d.control("disk0/snapshot-external"), "s1");
            assertNotEquals(0, r.exitCode());
            String error = Files.readString(d.control("disk0/last-error"));
            assertTrue(error.startsWith("snapshot-external: ") && error.contains("flush"), error);
            assertEquals(graph, Files.readString(d.control("graph")));
            assertFalse(Files.exists(dir.resolve("c0-s1.qcow2")), "the overlay made beside the flush is gone");
            assertArrayEquals(configBefore, Files.readAllBytes(config));
            sh("head -c 1M /dev/urandom > " + dir.resolve("x.bin")).ok();
            sh("dd if=" + dir.resolve("x.bin") + " of=" + d.disk("disk0") + " bs=1M conv=notrunc,fsync status=none").ok();
            sh("cmp -n 1048576 " + dir.resolve("x.bin") + " " + d.disk("disk0")).ok();
            assertEquals(0, d.unmount());
        }
        run("qemu-img", "check", "-q", dir.resolve("c0.qcow2").toString()).ok();
    }

    @Test
    void aNestedNodeMovesToItsOwnEntryAndSnapshotsChainWhileWritesRun() throws Exception {
        Path base = dir.resolve("a.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", base.toString(), "8M").ok();
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"objects": [{"qom-type": "throttle-group", "id": "tg0", "limits": {"iops-total": 100000}}],
                 "blockdev": [{"driver": "throttle", "node-name": "t0", "throttle-group": "tg0",
                               "file": {"driver": "qcow2", "node-name": "q0",
                                        "file": {"driver": "file", "filename": "a.qcow2"}}}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """);
        Path pattern = dir.resolve("p.bin");
        sh("head -c 8M /dev/urandom > " + pattern).ok();
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            // the same bytes over and over while two snapshots are taken: every write lands whole
            Process writer = new ProcessBuilder("bash", "-c", "for i in 1 2 3 4 5 6; do dd if=" + pattern + " of="
                    + d.disk("disk0") + " bs=64k oflag=direct conv=notrunc status=none || exit 1; done").start();
            echo(d.control("disk0/snapshot-external"), "s1").ok();
            echo(d.control("disk0/snapshot-external"), "s2").ok();
            assertEquals(0, writer.waitFor());
            sh("cmp " + d.disk("disk0") + " " + pattern).ok();
            String graph = Files.readString(d.control("graph"));
            // overlays are named after the chain's original image and the snapshot only
            assertTrue(graph.contains("└── file: q0-s2  qcow2") && graph.contains("── backing: q0-s1  qcow2")
                    && graph.contains("── backing: q0  qcow2"), graph);
            assertEquals(0, d.unmount());
        }
        Path top = dir.resolve("a-s2.qcow2");
        JsonNode info = JSON.readTree(run("qemu-img", "info", "--output=json", "--backing-chain", top.toString())
                .ok().stdout());
        assertEquals(3, info.size());
        assertEquals(dir.resolve("a-s1.qcow2").toString(), info.get(0).get("full-backing-filename").asText());
        assertEquals(base.toString(), info.get(1).get("full-backing-filename").asText());
        for (String image : List.of("a.qcow2", "a-s1.qcow2", "a-s2.qcow2")) {
            run("qemu-img", "check", "-q", dir.resolve(image).toString()).ok();
        }
        run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", top.toString(), pattern.toString()).ok();
        JsonNode written = JSON.readTree(config.toFile());
        assertEquals("q0-s2", written.get("blockdev").get(0).get("file").asText(), written.toString());
        assertEquals("q0", written.get("blockdev").get(1).get("node-name").asText(), written.toString());
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("cmp " + d.disk("disk0") + " " + pattern).ok();
            assertEquals(0, d.unmount());
        }
    }

    @Test
    void luksStaysOnTopAndTheOverlayHoldsOnlyCiphertext() throws Exception {
        Files.writeString(dir.resolve("key.txt"), "pw");
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"objects": [{"qom-type": "secret", "id": "s0", "file": "key.txt"}],
                 "create": [{"filename": "e.luks", "format": "luks", "size": "4M", "key-secret": "s0", "iter-time": 10}],
                 "blockdev": [{"driver": "file", "node-name": "f0", "filename": "e.luks"},
                              {"driver": "luks", "node-name": "l0", "file": "f0", "key-secret": "s0"}],
                 "exports": [{"id": "disk0", "node-name": "l0", "writable": true}]}
                """);
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            sh("printf 'secret before' | dd of=" + d.disk("disk0") + " bs=1 seek=4000 conv=notrunc status=none").ok();
            echo(d.control("disk0/snapshot-external"), "s1").ok();
            sh("printf 'secret after!' | dd of=" + d.disk("disk0") + " bs=1 seek=9000 conv=notrunc status=none").ok();
            String graph = Files.readString(d.control("graph"));
            assertTrue(graph.contains("└── l0  luks") && graph.contains("── file: f0-s1  qcow2")
                    && graph.contains("── backing: f0  file"), graph);
            assertEquals(0, d.unmount());
        }
        Path overlay = dir.resolve("e-s1.qcow2");
        JsonNode info = JSON.readTree(run("qemu-img", "info", "--output=json", overlay.toString()).ok().stdout());
        assertEquals("raw", info.get("backing-filename-format").asText());
        run("qemu-img", "check", "-q", overlay.toString()).ok();
        assertNotEquals(0, sh("grep -c 'secret after' " + overlay).exitCode());
        String secret = "secret,id=s0,file=" + dir.resolve("key.txt");
        Path out = dir.resolve("out.raw");
        run("qemu-img", "convert", "--object", secret, "--image-opts",
                "driver=luks,key-secret=s0,file.driver=qcow2,file.file.filename=" + overlay, "-O", "raw", out.toString())
                .ok();
        assertEquals("secret before", sh("dd if=" + out + " bs=1 skip=4000 count=13 status=none").ok().stdout());
        assertEquals("secret after!", sh("dd if=" + out + " bs=1 skip=9000 count=13 status=none").ok().stdout());
        Path baseOut = dir.resolve("base.raw");
        run("qemu-img", "convert", "--object", secret, "--image-opts",
                "driver=luks,key-secret=s0,file.filename=" + dir.resolve("e.luks"), "-O", "raw", baseOut.toString()).ok();
        assertEquals("secret before", sh("dd if=" + baseOut + " bs=1 skip=4000 count=13 status=none").ok().stdout());
        assertNotEquals(0, sh("grep -c 'secret after' " + baseOut).exitCode());
        try (MountedDaemon d = MountedDaemon.mount(config, dir.resolve("mnt"))) {
            assertEquals("secret after!", sh("dd if=" + d.disk("disk0") + " bs=1 skip=9000 count=13 status=none").ok()
                    .stdout());
            assertEquals(0, d.unmount());
        }
    }

    @Test
    void aMountFromTheCommandLineRefusesWithOneLine() throws Exception {
        Path img = dir.resolve("disk0.img");
        run("qemu-img", "create", "-q", "-f", "raw", img.toString(), "1M").ok();
        Path mnt = dir.resolve("mnt");
        try (MountedDaemon d = MountedDaemon.start(List.of("mount", "-v",
                "--blockdev", "driver=file,node-name=f0,filename=" + img,
                "--blockdev", "driver=raw,node-name=r0,file=f0",
                "--export", "id=disk0,node-name=r0,writable=on", mnt.toString()), Map.of(), mnt)) {
            Shell.Result r = echo(d.control("disk0/snapshot-external"), "s1");
            assertTrue(r.exitCode() != 0 && r.stderr().contains("Invalid argument"), r.stderr());
            assertEquals("snapshot-external: mounted without a config file: nothing to record the overlays in\n",
                    Files.readString(d.control("disk0/last-error")));
            assertEquals(0, d.unmount());
        }
        assertEquals(List.of("disk0.img", "mnt"), sh("ls -A " + dir).ok().stdout().lines().toList());
    }
}
