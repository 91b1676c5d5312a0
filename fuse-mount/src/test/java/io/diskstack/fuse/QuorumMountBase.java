package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Quorum over three images of one format through the mount, one export per case: a child
 * corrupted on the host (dd over its data) is outvoted, and with rewrite-corrupted repaired; a
 * child failing with EIO (blkdebug above it) is tolerated, two are not; blkverify fails a
 * mismatch. Subclasses pick the format.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class QuorumMountBase {
    @TempDir
    static Path dir;
    MountedDaemon daemon;

    /** The image format of the children: raw or qcow2. */
    abstract String format();

    private String image(String prefix, int i) {
        return prefix + i + "." + format();
    }

    /** A child: FORMAT over the image, under a blkdebug that fails its I/O if {@code failing}. */
    private String child(String image, boolean failing) {
        String node = "{\"driver\": \"" + format() + "\", \"file\": {\"driver\": \"file\", \"filename\": \"" + image
                + "\"}}";
        // Reads and writes fail; flushes pass, so the mount still closes cleanly.
        return failing ? "{\"driver\": \"blkdebug\", \"inject-error\": [{\"errno\": \"EIO\", "
                + "\"iotype\": \"read+write+write-zeroes\"}], \"file\": " + node + "}" : node;
    }

    private String quorum(String name, String prefix, int n, int threshold, String extra, int... failing) {
        StringBuilder children = new StringBuilder();
        for (int i = 0; i < n; i++) {
            int k = i;
            run("qemu-img", "create", "-q", "-f", format(), dir.resolve(image(prefix, i)).toString(), "16M").ok();
            children.append(i == 0 ? "" : ", ").append(child(image(prefix, i),
                    Arrays.stream(failing).anyMatch(f -> f == k)));
        }
        return "{\"driver\": \"quorum\", \"node-name\": \"" + name + "\", \"vote-threshold\": " + threshold
                + extra + ", \"children\": [" + children + "]}";
    }

    @BeforeAll
    void mount() throws Exception {
        Shell.requireTool("qemu-img");
        Files.writeString(dir.resolve("config.json"), "{\"blockdev\": [" + quorum("qv", "v", 3, 2, "") + ",\n"
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

    private Path data(String name, String size) {
        Path p = dir.resolve(name);
        sh("head -c " + size + " /dev/urandom > " + p).ok();
        return p;
    }

    private void write(Path data, String export) {
        sh("dd if=" + data + " of=" + daemon.disk(export) + " bs=1M oflag=direct conv=notrunc,fsync status=none").ok();
    }

    /** Where guest offset {@code guest} of an image lives in its file. */
    private long hostOffset(String image, long guest) throws Exception {
        if (format().equals("raw")) {
            return guest;
        }
        String json = run("qemu-img", "map", "-U", "--output=json", dir.resolve(image).toString()).ok().stdout();
        for (JsonNode e : new ObjectMapper().readTree(json)) {
            long start = e.get("start").asLong();
            if (guest >= start && guest < start + e.get("length").asLong() && e.has("offset")) {
                return e.get("offset").asLong() + guest - start;
            }
        }
        throw new AssertionError("guest offset " + guest + " of " + image + " is not allocated: " + json);
    }

    /** Overwrites guest bytes of an image on the host, in its file, behind the mount's back. */
    private void corrupt(String image, long guest, int length) throws Exception {
        sh("head -c " + length + " /dev/urandom | dd of=" + dir.resolve(image) + " bs=1 seek="
                + hostOffset(image, guest) + " conv=notrunc status=none").ok();
    }

    private Shell.Result readBack(Path data, String export) {
        return sh("cmp " + data + " <(dd if=" + daemon.disk(export) + " bs=1M count=4 iflag=direct status=none)");
    }

    private long stat(String export, String key) throws Exception {
        String stats = Files.readString(daemon.control(export + "/stats"));
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(key) + " (\\d+)$").matcher(stats);
        assertTrue(m.find(), key + " in " + stats);
        return Long.parseLong(m.group(1));
    }

    private void assertSameGuestData(String a, String b) {
        run("qemu-img", "compare", "-q", "-U", "-f", format(), "-F", format(), dir.resolve(a).toString(),
                dir.resolve(b).toString()).ok();
    }

    @Test
    void aChildCorruptedOnTheHostIsOutvoted() throws Exception {
        Path d = data("vote.bin", "4M");
        write(d, "vote");
        corrupt(image("v", 1), 1 << 20, 65536);
        readBack(d, "vote").ok();
        assertTrue(stat("vote", "qv.children.1.mismatches") >= 1);
        assertEquals(0, stat("vote", "qv.children.0.mismatches"));
        assertNotEquals(0, run("qemu-img", "compare", "-q", "-U", "-f", format(), "-F", format(),
                dir.resolve(image("v", 0)).toString(),
                dir.resolve(image("v", 1)).toString()).exitCode(), "without rewrite-corrupted the bad copy stays");
        assertTrue(daemon.log().contains("children.1 ('#qv.children.1') differs from the majority"), daemon.log());
    }

    @Test
    void rewriteCorruptedRepairsTheChildOnTheHost() throws Exception {
        Path d = data("rewrite.bin", "4M");
        write(d, "rewrite");
        corrupt(image("w", 2), 12345, 4000);
        corrupt(image("w", 2), 3 << 20, 100);
        readBack(d, "rewrite").ok();
        sh("sync " + daemon.disk("rewrite")).ok();
        assertSameGuestData(image("w", 0), image("w", 2));
        assertSameGuestData(image("w", 0), image("w", 1));
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
    void blkverifyMismatchIsEio() throws Exception {
        Path d = data("verify.bin", "4M");
        write(d, "verify");
        readBack(d, "verify").ok();
        corrupt(image("z", 1), 2 << 20, 1);
        Shell.Result r = readBack(d, "verify");
        assertNotEquals(0, r.exitCode());
        assertTrue(r.stderr().contains("Input/output error"), r.stderr());
        assertTrue(daemon.log().contains("blkverify mismatch at offset " + (2 << 20)), daemon.log());
    }

    /** A clean stop; then every image checks clean (qcow2), and the repaired copies still agree. */
    @AfterAll
    void stopAndCheckImages() {
        if (daemon == null) {
            return;
        }
        try {
            assertEquals(0, daemon.stop());
        } finally {
            daemon.close();
        }
        if (format().equals("qcow2")) {
            for (String prefix : new String[] {"v", "w", "x", "y"}) {
                for (int i = 0; i < 3; i++) {
                    run("qemu-img", "check", "-q", dir.resolve(image(prefix, i)).toString()).ok();
                }
            }
        }
        assertSameGuestData(image("w", 0), image("w", 1));
        assertSameGuestData(image("w", 0), image("w", 2));
    }
}
