package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.InProcessCli.Outcome;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code diskstack info} against {@code qemu-img info}, on images qemu-img made. */
class InfoCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @BeforeEach
    void tools() {
        Shell.requireTool("qemu-img");
    }

    private String path(String name) {
        return dir.resolve(name).toString();
    }

    private static void qemuImg(String... args) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        Shell.run(java.time.Duration.ofMinutes(2), null, cmd).ok();
    }

    /** Our JSON and qemu-img's agree on every key both have (recursively), and share the main keys. */
    private void sameAsQemuImg(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "info", "--output=json"));
        cmd.addAll(List.of(args));
        Shell.Result theirs = Shell.run(java.time.Duration.ofMinutes(1), null, cmd).ok();
        List<String> ours = new ArrayList<>(List.of("info", "--output=json"));
        ours.addAll(List.of(args));
        Outcome r = diskstack(ours.toArray(new String[0]));
        assertEquals(0, r.code(), r.err());
        JsonNode a = JSON.readTree(r.out());
        JsonNode b = JSON.readTree(theirs.stdout());
        int compared = compare(a, b, "");
        assertTrue(compared >= 5, "only " + compared + " keys in common: " + r.out() + " vs " + theirs.stdout());
        for (JsonNode image : a.isArray() ? a : List.of(a)) {
            for (String key : List.of("virtual-size", "filename", "format", "actual-size", "dirty-flag")) {
                assertTrue(image.has(key), key + " in " + r.out());
            }
        }
    }

    private static int compare(JsonNode ours, JsonNode theirs, String at) {
        if (ours.isObject() && theirs.isObject()) {
            int n = 0;
            for (Iterator<String> it = ours.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (theirs.has(k)) {
                    n += compare(ours.get(k), theirs.get(k), at + "." + k);
                }
            }
            return n;
        }
        if (ours.isArray() && theirs.isArray()) {
            assertEquals(theirs.size(), ours.size(), "length of " + at);
            int n = 0;
            for (int i = 0; i < ours.size(); i++) {
                n += compare(ours.get(i), theirs.get(i), at + "[" + i + "]");
            }
            return n;
        }
        assertEquals(theirs, ours, at);
        return 1;
    }

    private void sameHumanOutput(String... args) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "info"));
        cmd.addAll(List.of(args));
        Shell.Result theirs = Shell.run(java.time.Duration.ofMinutes(1), null, cmd).ok();
        List<String> ours = new ArrayList<>(List.of("info"));
        ours.addAll(List.of(args));
        Outcome r = diskstack(ours.toArray(new String[0]));
        assertEquals(0, r.code(), r.err());
        assertEquals(theirs.stdout(), r.out());
    }

    @Test
    void qcow2WithBackingChainAndSnapshots() throws Exception {
        qemuImg("create", "-q", "-f", "qcow2", path("base.qcow2"), "64M");
        qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", path("top.qcow2"));
        qemuImg("snapshot", "-c", "s1", path("top.qcow2"));
        Shell.run("qemu-io", "-f", "qcow2", "-c", "write -P 7 1M 3M", path("top.qcow2")).ok();
        sameAsQemuImg(path("top.qcow2"));
        sameAsQemuImg("--backing-chain", path("top.qcow2"));
        sameHumanOutput("--backing-chain", path("top.qcow2"));
        // without --backing-chain the backing file is not even opened: info works without it
        Files.delete(dir.resolve("base.qcow2"));
        sameAsQemuImg(path("top.qcow2"));
    }

    @Test
    void qcow2Variants() throws Exception {
        qemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", path("v2.qcow2"), "1G");
        sameAsQemuImg(path("v2.qcow2"));
        qemuImg("create", "-q", "-f", "qcow2", "-o",
                "extended_l2=on,cluster_size=128k,lazy_refcounts=on,compression_type=zstd,refcount_bits=64",
                path("x.qcow2"), "3G");
        sameAsQemuImg(path("x.qcow2"));
        sameHumanOutput(path("x.qcow2"));
        // an image not closed cleanly: the dirty bit (incompatible feature bit 0)
        try (FileChannel ch = FileChannel.open(dir.resolve("x.qcow2"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, 79);
            ch.write(ByteBuffer.wrap(new byte[] {(byte) (b.get(0) | 1)}), 79);
        }
        sameAsQemuImg(path("x.qcow2"));
        assertTrue(diskstack("info", path("x.qcow2")).out().contains("cleanly shut down: no\n"));
    }

    @Test
    void rawAndTheFormatGivenWithF() throws Exception {
        qemuImg("create", "-q", "-f", "raw", path("r.img"), "5M");
        Shell.run("qemu-io", "-f", "raw", "-c", "write 0 1M", path("r.img")).ok();
        sameAsQemuImg(path("r.img"));
        sameHumanOutput(path("r.img"));
        // a qcow2 image read as raw (its file padded to whole sectors: qemu-img rounds a raw size up to them)
        qemuImg("create", "-q", "-f", "qcow2", path("q.qcow2"), "1M");
        Shell.run("truncate", "-s", "256K", path("q.qcow2")).ok();
        sameAsQemuImg("-f", "raw", path("q.qcow2"));
    }

    @Test
    void luksNeedsNoKeyToBeDescribed() throws Exception {
        Files.writeString(dir.resolve("key"), "pass phrase");
        qemuImg("create", "-q", "-f", "luks", "--object", "secret,id=s0,file=" + path("key"), "-o",
                "key-secret=s0,iter-time=100,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256",
                path("d.luks"), "16M");
        sameAsQemuImg(path("d.luks"));
        sameHumanOutput(path("d.luks"));
        Outcome r = diskstack("info", "--output=json", path("d.luks"));
        assertTrue(r.out().contains("\"encrypted\": true") && !r.out().contains("pass phrase"), r.out());
    }

    /** A qcow2 image inside a LUKS volume: what is inside shows only with the key and the whole stack. */
    @Test
    void insideAnEncryptedContainerWithTheKey() throws Exception {
        Files.writeString(dir.resolve("key"), "pass phrase");
        qemuImg("create", "-q", "-f", "qcow2", path("inner.qcow2"), "32M");
        qemuImg("convert", "-f", "raw", "-O", "luks", "--object", "secret,id=s0,file=" + path("key"), "-o",
                "key-secret=s0,iter-time=100", path("inner.qcow2"), path("b.luks"));
        Outcome plain = diskstack("info", path("b.luks"));
        assertEquals(0, plain.code(), plain.err());
        assertTrue(plain.out().contains("file format: luks\n"), plain.out());
        Outcome inside = diskstack("info", "--object", "secret,id=s0,file=" + path("key"), "--image-opts",
                "driver=qcow2,file.driver=luks,file.key-secret=s0,file.file.driver=file,file.file.filename="
                        + path("b.luks"));
        assertEquals(0, inside.code(), inside.err());
        assertTrue(inside.out().contains("file format: qcow2\nvirtual size: 32 MiB (33554432 bytes)\n"), inside.out());
        Outcome wrong = diskstack("info", "--object", "secret,id=s0,data=nope", "--image-opts",
                "driver=qcow2,file.driver=luks,file.key-secret=s0,file.file.driver=file,file.file.filename="
                        + path("b.luks"));
        assertEquals(2, wrong.code(), wrong.out());
        assertTrue(wrong.err().contains("no key slot opens with secret 's0'") && !wrong.err().contains("nope"), wrong.err());
    }

    @Test
    void errorsNameTheFile() {
        Outcome r = diskstack("info", path("missing.qcow2"));
        assertEquals(2, r.code());
        assertEquals("diskstack: info: '" + path("missing.qcow2") + "' does not exist\n", r.err());
        r = diskstack("info", "--output=xml", path("missing.qcow2"));
        assertEquals(2, r.code());
        if (!r.err().contains("human or json")) {
            fail(r.err());
        }
    }
}
