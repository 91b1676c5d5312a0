package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.sh;
import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.InProcessCli.Outcome;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A dedup disk through the mount: what it stores (du of its data child, its stats), a real file
 * system on it, and the stack throttle → dedup → (metadata: raw, data: luks → raw) across a
 * remount; {@code diskstack check} is clean after each.
 */
class DedupMountTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    private void create(String size, String... extra) {
        String files = "metadata=" + dir.resolve("meta.img") + ",data=" + dir.resolve("data.img");
        Outcome r = diskstack("create", "-f", "dedup", "-o", files + String.join("", extra), size);
        assertEquals(0, r.code(), r.err());
    }

    private Path config(String json) throws Exception {
        Path c = dir.resolve("config.json");
        Files.writeString(c, json);
        return c;
    }

    private Path plainConfig() throws Exception {
        return config("""
                {"blockdev": [{"driver": "dedup", "node-name": "dd0",
                               "metadata": {"driver": "file", "filename": "meta.img"},
                               "data": {"driver": "file", "filename": "data.img"}}],
                 "exports": [{"id": "disk0", "node-name": "dd0", "writable": true}]}
                """);
    }

    private static long du(Path file) {
        return Long.parseLong(sh("du -B1 " + file + " | cut -f1").ok().stdout().trim());
    }

    /** The node counters in a stats file: {@code dd0.dedup.ratio} → {@code 4.000}. */
    private static Map<String, String> stats(MountedDaemon d) throws Exception {
        Map<String, String> out = new HashMap<>();
        for (String line : Files.readAllLines(d.control("disk0/stats"))) {
            String[] kv = line.split(" ");
            out.put(kv[0], kv[1]);
        }
        return out;
    }

    private static long distinctBlocks(Path file) throws Exception {
        byte[] all = Files.readAllBytes(file);
        java.util.Set<java.nio.ByteBuffer> blocks = new java.util.HashSet<>();
        for (int off = 0; off < all.length; off += 4096) {
            blocks.add(java.nio.ByteBuffer.wrap(all, off, 4096).slice());
        }
        return blocks.size();
    }

    private void checkClean(String... extraOptions) {
        String files = "metadata=" + dir.resolve("meta.img") + ",data=" + dir.resolve("data.img");
        Outcome r = diskstack("check", "-f", "dedup", "-o", extraOptions.length > 0 ? extraOptions[0] : files);
        assertEquals(0, r.code(), r.out() + r.err());
    }

    @Test
    void sixteenMiBWrittenAtFourOffsetsTakesSixteenMiBOfData() throws Exception {
        create("128M");
        Path random = dir.resolve("r.bin");
        sh("head -c 16M /dev/urandom > " + random).ok();
        try (MountedDaemon d = MountedDaemon.mount(plainConfig(), dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            for (int at : new int[] {0, 32, 64, 96}) {
                sh("dd if=" + random + " of=" + disk + " bs=1M seek=" + at + " conv=notrunc,fsync status=none").ok();
            }
            for (int at : new int[] {0, 32, 64, 96}) {
                sh("cmp -n 16777216 " + random + " <(dd if=" + disk + " bs=1M skip=" + at + " count=16 status=none)")
                        .ok();
            }
            Map<String, String> s = stats(d);
            assertEquals(String.valueOf(64 * MIB), s.get("dd0.dedup.logical-bytes"), s.toString());
            assertEquals(String.valueOf(16 * MIB), s.get("dd0.dedup.physical-bytes"), s.toString());
            assertEquals("4.000", s.get("dd0.dedup.ratio"));
            assertTrue(s.get("dd0.dedup.index-cache-hit-rate").matches("[01]\\.[0-9]{3}"), s.toString());
            assertEquals(0, d.unmount());
        }
        long data = du(dir.resolve("data.img"));
        assertTrue(data >= 16 * MIB && data <= 16 * MIB + 64 * 1024, "data child uses " + data + " bytes");
        // FORMAT.md: for 128 MiB over 33792 data blocks, 318 pages of tables, and what the journal used
        long meta = du(dir.resolve("meta.img"));
        assertTrue(meta <= 2 * MIB + 320 * 4096, "metadata child uses " + meta + " bytes");
        checkClean();
    }

    @Test
    void ext4OnALoopDeviceOverTheDiskChecksClean() throws Exception {
        Shell.requireTool("mkfs.ext4");
        Shell.requireTool("losetup");
        create("256M");
        Path fsdir = Files.createDirectories(dir.resolve("ext4"));
        try (MountedDaemon d = MountedDaemon.mount(plainConfig(), dir.resolve("mnt"))) {
            String loop = sh("losetup -f --show " + d.disk("disk0")).ok().stdout().trim();
            try {
                sh("mkfs.ext4 -q -F " + loop).ok();
                sh("mount " + loop + " " + fsdir).ok();
                try {
                    sh("head -c 20M /dev/urandom > " + fsdir.resolve("a") + " && cp " + fsdir.resolve("a") + " "
                            + fsdir.resolve("b") + " && mkdir " + fsdir.resolve("d") + " && cp " + fsdir.resolve("a")
                            + " " + fsdir.resolve("d/c") + " && sync").ok();
                    sh("cmp " + fsdir.resolve("a") + " " + fsdir.resolve("b") + " && cmp " + fsdir.resolve("a") + " "
                            + fsdir.resolve("d/c")).ok();
                    Map<String, String> s = stats(d);
                    long logical = Long.parseLong(s.get("dd0.dedup.logical-bytes"));
                    long physical = Long.parseLong(s.get("dd0.dedup.physical-bytes"));
                    assertTrue(logical >= 60 * MIB && physical < logical - 35 * MIB, "three copies of 20 MiB: " + s);
                    sh("rm " + fsdir.resolve("b") + " && fstrim " + fsdir).ok();
                } finally {
                    sh("umount " + fsdir).ok();
                }
                Shell.Result fsck = sh("e2fsck -fn " + loop);
                assertEquals(0, fsck.exitCode(), fsck.stdout() + fsck.stderr());
            } finally {
                sh("losetup -d " + loop);
            }
            assertEquals(0, d.unmount());
        }
        checkClean();
    }

    /** The stack, with a plaintext marker that must not reach the LUKS volume. */
    @Test
    void throttleOverDedupOverRawAndLuksSurvivesARemount() throws Exception {
        Shell.requireTool("cryptsetup");
        Path key = dir.resolve("key.txt");
        Files.writeString(key, "dedup over luks");
        Outcome r = diskstack("create", "-f", "luks", "--object", "secret,id=s0,file=" + key, "-o",
                "key-secret=s0,iter-time=10", dir.resolve("data.luks").toString(), "64M");
        assertEquals(0, r.code(), r.err());
        String dataChild = "data.driver=luks,data.key-secret=s0,data.file.driver=raw,data.file.file.driver=file,"
                + "data.file.file.filename=" + dir.resolve("data.luks");
        r = diskstack("create", "-f", "dedup", "--object", "secret,id=s0,file=" + key, "-o",
                "metadata=" + dir.resolve("meta.img") + "," + dataChild, "64M");
        assertEquals(0, r.code(), r.err());
        Path c = config("""
                {"objects": [{"qom-type": "secret", "id": "s0", "file": "key.txt"},
                             {"qom-type": "throttle-group", "id": "tg0", "limits": {"bps-total": "200M"}}],
                 "blockdev": [
                   {"driver": "raw", "node-name": "m0", "file": {"driver": "file", "filename": "meta.img"}},
                   {"driver": "luks", "node-name": "l0", "key-secret": "s0",
                    "file": {"driver": "raw", "file": {"driver": "file", "filename": "data.luks"}}},
                   {"driver": "dedup", "node-name": "dd0", "metadata": "m0", "data": "l0"},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "dd0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """);
        Path marked = dir.resolve("marked.bin");
        sh("yes 'DEDUP-PLAINTEXT-MARKER' | head -c 4M > " + marked + " && head -c 4M /dev/urandom >> " + marked).ok();
        try (MountedDaemon d = MountedDaemon.mount(c, dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            sh("dd if=" + marked + " of=" + disk + " bs=1M conv=notrunc,fsync status=none").ok();
            sh("dd if=" + marked + " of=" + disk + " bs=1M seek=16 conv=notrunc,fsync status=none").ok();
            String graph = Files.readString(d.control("graph"));
            assertTrue(graph.contains("dd0  dedup") && graph.contains("l0  luks"), graph);
            Map<String, String> s = stats(d);
            for (String key2 : new String[] {"logical-bytes", "physical-bytes", "ratio", "index-cache-hit-rate"}) {
                assertTrue(s.containsKey("dd0.dedup." + key2), "stats of disk0 show dedup." + key2 + ": " + s);
            }
            // both copies share every block, and the repeated marker lines make few distinct blocks
            assertEquals(String.valueOf(distinctBlocks(marked) * 4096), s.get("dd0.dedup.physical-bytes"), s.toString());
            assertEquals(String.valueOf(16 * MIB), s.get("dd0.dedup.logical-bytes"), s.toString());
            assertEquals(0, d.unmount());
        }
        assertTrue(sh("grep -c DEDUP-PLAINTEXT " + dir.resolve("data.luks")).exitCode() != 0,
                "no plaintext on the luks volume");
        try (MountedDaemon d = MountedDaemon.mount(c, dir.resolve("mnt"))) {
            sh("cmp -n 8388608 " + marked + " " + d.disk("disk0")).ok();
            sh("cmp -n 8388608 " + marked + " <(dd if=" + d.disk("disk0") + " bs=1M skip=16 count=8 status=none)").ok();
            assertEquals(0, d.unmount());
        }
        r = diskstack("check", "-f", "dedup", "--object", "secret,id=s0,file=" + key, "-o",
                "metadata=" + dir.resolve("meta.img") + "," + dataChild);
        assertEquals(0, r.code(), r.out() + r.err());
    }
}
