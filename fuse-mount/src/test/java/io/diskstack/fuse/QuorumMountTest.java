package io.diskstack.fuse;

import static io.diskstack.fuse.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.fuse.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Quorum over raw images through the mount, one export per case: a child corrupted on the host
 * is outvoted (and with rewrite-corrupted repaired), a child failing with EIO is tolerated but
 * two are not, and blkverify fails a mismatch.
 */
class QuorumMountTest {
    @TempDir
    static Path dir;
    static MountedDaemon daemon;

    private static String images(String prefix, int n) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < n; i++) {
            s.append(s.length() == 0 ? "" : ",\n").append("{\"filename\": \"").append(prefix).append(i)
                    .append(".img\", \"format\": \"raw\", \"size\": \"16M\"}");
        }
        return s.toString();
    }

    /** A child: raw over the image, under a blkdebug that fails every request if {@code failing}. */
    private static String child(String image, boolean failing) {
        String file = "{\"driver\": \"file\", \"filename\": \"" + image + "\"}";
        if (failing) {
            file = "{\"driver\": \"blkdebug\", \"inject-error\": [{\"errno\": \"EIO\"}], \"file\": " + file + "}";
        }
        return "{\"driver\": \"raw\", \"file\": " + file + "}";
    }

    private static String quorum(String name, String prefix, int n, int threshold, String extra, int... failing) {
        StringBuilder children = new StringBuilder();
        for (int i = 0; i < n; i++) {
            int k = i;
            children.append(i == 0 ? "" : ", ").append(child(prefix + i + ".img",
                    java.util.Arrays.stream(failing).anyMatch(f -> f == k)));
        }
        return "{\"driver\": \"quorum\", \"node-name\": \"" + name + "\", \"vote-threshold\": " + threshold
                + extra + ", \"children\": [" + children + "]}";
    }

    @BeforeAll
    static void mount() throws Exception {
        Files.writeString(dir.resolve("config.json"), "{\"create\": [" + images("v", 3) + ",\n" + images("w", 3)
                + ",\n" + images("x", 3) + ",\n" + images("y", 3) + ",\n" + images("z", 2) + "],\n"
                + "\"blockdev\": [" + quorum("qv", "v", 3, 2, "") + ",\n"
                + quorum("qw", "w", 3, 2, ", \"rewrite-corrupted\": true") + ",\n"
                + quorum("qx", "x", 3, 2, "", 1) + ",\n"
                + quorum("qy", "y", 3, 2, "", 0, 2) + ",\n"
                + quorum("qz", "z", 2, 2, ", \"blkverify\": true") + "],\n"
                + "\"exports\": [{\"id\": \"vote\", \"node-name\": \"qv\", \"writable\": true},\n"
                + "{\"id\": \"rewrite\", \"node-name\": \"qw\", \"writable\": true},\n"
                + "{\"id\": \"onebad\", \"node-name\": \"qx\", \"writable\": true},\n"
                + "{\"id\": \"twobad\", \"node-name\": \"qy\", \"writable\": true},\n"
                + "{\"id\": \"verify\", \"node-name\": \"qz\", \"writable\": true}]}\n");
        daemon = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
    }

    @AfterAll
    static void unmount() {
        if (daemon != null) {
            daemon.close();
        }
    }

    private static Path data(String name, String size) {
        Path p = dir.resolve(name);
        sh("head -c " + size + " /dev/urandom > " + p).ok();
        return p;
    }

    private static void write(Path data, String export) {
        sh("dd if=" + data + " of=" + daemon.disk(export) + " bs=1M oflag=direct conv=notrunc,fsync status=none").ok();
    }

    /** Overwrites bytes of an image file on the host, behind the mount's back. */
    private static void corrupt(String image, long offset, int length) {
        sh("head -c " + length + " /dev/urandom | dd of=" + dir.resolve(image) + " bs=1 seek=" + offset
                + " conv=notrunc status=none").ok();
    }

    private static Shell.Result readBack(Path data, String export) {
        return sh("cmp " + data + " <(dd if=" + daemon.disk(export) + " bs=1M count=4 iflag=direct status=none)");
    }

    private static long stat(String export, String key) throws Exception {
        String stats = Files.readString(daemon.control(export + "/stats"));
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(key) + " (\\d+)$").matcher(stats);
        assertTrue(m.find(), key + " in " + stats);
        return Long.parseLong(m.group(1));
    }

    @Test
    void aChildCorruptedOnTheHostIsOutvoted() throws Exception {
        Path d = data("vote.bin", "4M");
        write(d, "vote");
        corrupt("v1.img", 1 << 20, 65536);
        readBack(d, "vote").ok();
        assertTrue(stat("vote", "qv.children.1.mismatches") >= 1);
        assertEquals(0, stat("vote", "qv.children.0.mismatches"));
        assertNotEquals(0, sh("cmp -s " + dir.resolve("v0.img") + " " + dir.resolve("v1.img")).exitCode(),
                "without rewrite-corrupted the bad copy stays");
        assertTrue(daemon.log().contains("children.1 ('#qv.children.1') differs from the majority"), daemon.log());
    }

    @Test
    void rewriteCorruptedRepairsTheChildOnTheHost() throws Exception {
        Path d = data("rewrite.bin", "4M");
        write(d, "rewrite");
        corrupt("w2.img", 12345, 4000);
        corrupt("w2.img", 3 << 20, 100);
        readBack(d, "rewrite").ok();
        sh("sync").ok();
        sh("cmp " + dir.resolve("w0.img") + " " + dir.resolve("w2.img")).ok();
        sh("cmp " + dir.resolve("w0.img") + " " + dir.resolve("w1.img")).ok();
        assertTrue(stat("rewrite", "qw.children.2.mismatches") >= 1);
    }

    @Test
    void oneChildFailingWithEioIsTolerated() throws Exception {
        Path d = data("onebad.bin", "4M");
        write(d, "onebad");
        readBack(d, "onebad").ok();
        assertTrue(stat("onebad", "qx.children.1.errors") >= 2);
        assertEquals(0, stat("onebad", "qx.children.0.errors"));
    }

    @Test
    void twoChildrenFailingIsEio() {
        Shell.Result w = sh("head -c 1M /dev/zero | dd of=" + daemon.disk("twobad")
                + " bs=1M oflag=direct conv=notrunc status=none");
        assertNotEquals(0, w.exitCode());
        assertTrue(w.stderr().contains("Input/output error"), w.stderr());
        Shell.Result r = sh("dd if=" + daemon.disk("twobad") + " of=/dev/null bs=1M count=1 iflag=direct status=none");
        assertNotEquals(0, r.exitCode());
        assertTrue(r.stderr().contains("Input/output error"), r.stderr());
    }

    @Test
    void blkverifyMismatchIsEio() {
        Path d = data("verify.bin", "4M");
        write(d, "verify");
        readBack(d, "verify").ok();
        corrupt("z1.img", 2 << 20, 1);
        Shell.Result r = readBack(d, "verify");
        assertNotEquals(0, r.exitCode());
        assertTrue(r.stderr().contains("Input/output error"), r.stderr());
        assertTrue(daemon.log().contains("blkverify mismatch at offset " + (2 << 20)), daemon.log());
    }
}
