package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.InProcessCli.Outcome;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code diskstack create -o preallocation=…} as qemu-img makes such images, and {@code -p} progress. */
class PreallocationTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long SIZE = 24L << 20;

    @TempDir
    Path dir;

    @BeforeEach
    void tools() {
        Shell.requireTool("qemu-img");
        Shell.requireTool("qemu-io");
    }

    private long diskSize(Path image) throws Exception {
        return JSON.readTree(Shell.run("qemu-img", "info", "--output=json", image.toString()).ok().stdout())
                .get("actual-size").asLong();
    }

    @Test
    void qcow2PreallocatedLikeQemuImg() throws Exception {
        for (String mode : new String[] {"metadata", "falloc", "full"}) {
            for (String extra : new String[] {"cluster_size=4k", "extended_l2=on,refcount_bits=1"}) {
                Path img = dir.resolve(mode + "-" + extra.length() + ".qcow2");
                Outcome r = diskstack("create", "-p", "-f", "qcow2", "-o", "preallocation=" + mode + "," + extra,
                        img.toString(), Long.toString(SIZE));
                assertEquals(0, r.code(), r.err());
                // not a terminal: only the final line of the bar
                assertEquals("create [" + "#".repeat(40) + "] 100% (" + SIZE + " of " + SIZE + " bytes)\n", r.out());
                Shell.run("qemu-img", "check", img.toString()).ok();
                JsonNode map = JSON.readTree(Shell.run("qemu-img", "map", "--output=json", img.toString()).ok().stdout());
                long covered = 0;
                for (JsonNode extent : map) {
                    assertTrue(extent.get("data").asBoolean(), mode + " " + extra + ": " + map);
                    covered += extent.get("length").asLong();
                }
                assertEquals(SIZE, covered, map.toString());
                long disk = diskSize(img);
                assertTrue(mode.equals("metadata") ? disk < SIZE / 4 : disk >= SIZE, mode + ": disk size " + disk);
                Shell.Result zeroes = Shell.run("qemu-io", "-f", "qcow2", "-c", "read -P 0 0 " + SIZE, img.toString()).ok();
                assertTrue(!zeroes.stdout().contains("Pattern verification failed"), zeroes.stdout());
                Path theirs = dir.resolve("theirs.qcow2");
                Shell.run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "preallocation=" + mode + "," + extra,
                        theirs.toString(), Long.toString(SIZE)).ok();
                Shell.run("qemu-img", "compare", img.toString(), theirs.toString()).ok();
                Files.delete(theirs);
                assertEquals(0, diskstack("check", img.toString()).code());
            }
        }
        // the image takes writes afterwards (qemu-io writes through its preallocated clusters)
        Path img = dir.resolve("full-15.qcow2");
        Shell.run("qemu-io", "-f", "qcow2", "-c", "write -P 9 1M 2M", img.toString()).ok();
        Shell.run("qemu-img", "check", img.toString()).ok();
    }

    @Test
    void rawPreallocated() throws Exception {
        for (String mode : new String[] {"falloc", "full"}) {
            Path img = dir.resolve(mode + ".img");
            Outcome r = diskstack("create", "-f", "raw", "-o", "preallocation=" + mode, img.toString(), "24M");
            assertEquals(0, r.code(), r.err());
            assertEquals("", r.out(), "no -p, no progress");
            assertEquals(SIZE, Files.size(img));
            assertTrue(diskSize(img) >= SIZE, mode + ": " + diskSize(img));
            Shell.run("cmp", "-n", Long.toString(SIZE), img.toString(), "/dev/zero").ok();
        }
    }

    @Test
    void badPreallocationChangesNothing() {
        Outcome r = diskstack("create", "-f", "raw", "-o", "preallocation=metadata", dir.resolve("x.img").toString(), "1M");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("'preallocation' value 'metadata' is not one of off, falloc, full"), r.err());
        assertTrue(!Files.exists(dir.resolve("x.img")));
        Shell.run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("b.qcow2").toString(), "1M").ok();
        r = diskstack("create", "-f", "qcow2", "-o", "backing_file=b.qcow2,preallocation=full",
                dir.resolve("t.qcow2").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("'preallocation' does not go with backing_file"), r.err());
        assertTrue(!Files.exists(dir.resolve("t.qcow2")));
    }

    @Test
    void checkShowsProgress() throws Exception {
        Path img = dir.resolve("c.qcow2");
        assertEquals(0, diskstack("create", "-f", "qcow2", "-o", "cluster_size=4k,preallocation=metadata",
                img.toString(), "64M").code());
        Outcome r = diskstack("check", "-p", img.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("check [" + "#".repeat(40) + "] 100% ("), r.out());
        assertTrue(r.out().contains("\nNo errors were found on the image.\n"), r.out());
    }
}
