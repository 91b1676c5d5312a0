package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Interop with QEMU 7.2 (LUKS1 only): images and data both ways. */
class LuksQemuInteropTest {
    @TempDir
    Path dir;

    private String secretObject;

    @BeforeEach
    void tools() throws IOException {
        ExternalTools.require("qemu-img");
        ExternalTools.require("qemu-io");
        Files.writeString(dir.resolve("key.txt"), LuksTesting.PASS);
        secretObject = "secret,id=s0,file=" + dir.resolve("key.txt");
    }

    private String imageOpts(String file) {
        return "driver=luks,key-secret=s0,file.filename=" + dir.resolve(file);
    }

    private byte[] readThroughUs(String file, long offset, int length) throws IOException {
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, file), false);
            ByteBuffer b = ByteBuffer.allocateDirect(length);
            disk.read(offset, b);
            return TestGraphs.toArray(b);
        } finally {
            g.close();
        }
    }

    @ParameterizedTest
    @CsvSource({
        "aes-256,xts,plain64",
        "aes-128,cbc,essiv",
    })
    void qemuMadeImageWrittenByQemuReadsBackThroughUs(String alg, String mode, String ivgen) throws Exception {
        ExternalTools.okWithRetry(dir, "qemu-img", "create", "-f", "luks", "--object", secretObject, "-o",
                "key-secret=s0,iter-time=10,cipher-alg=" + alg + ",cipher-mode=" + mode + ",ivgen-alg=" + ivgen,
                "q.luks", "6M");
        // Known plaintext through QEMU: random bytes with qemu-img convert, patterns with qemu-io
        // (one of them unaligned, so QEMU does its own read-modify-write).
        byte[] random = TestGraphs.randomBytes(21, 2 << 20);
        Files.write(dir.resolve("plain.raw"), random);
        ExternalTools.ok(dir, "qemu-img", "convert", "-n", "--object", secretObject, "-f", "raw", "plain.raw",
                "--target-image-opts", imageOpts("q.luks"));
        ExternalTools.ok(dir, "qemu-io", "--object", secretObject, "--image-opts", imageOpts("q.luks"),
                "-c", "write -P 0x5a 3M 64k", "-c", "write -P 0xc3 4194404 3000");
        assertArrayEquals(random, readThroughUs("q.luks", 0, random.length));
        byte[] pattern = new byte[65536];
        Arrays.fill(pattern, (byte) 0x5a);
        assertArrayEquals(pattern, readThroughUs("q.luks", 3 << 20, 65536));
        byte[] c3 = new byte[3000];
        Arrays.fill(c3, (byte) 0xc3);
        assertArrayEquals(c3, readThroughUs("q.luks", 4194404, 3000), "unaligned write by QEMU");
    }

    @ParameterizedTest
    @CsvSource({
        "aes-256,xts,plain64,sha256",
        "aes-128,xts,plain64,sha1",
        "aes-256,cbc,essiv,sha512",
        "aes-192,xts,plain64,sha256",
        "aes-128,cbc,plain64,sha256",
    })
    void imageWeCreateAndWriteIsReadByQemu(String alg, String mode, String ivgen, String hash) throws Exception {
        LuksTesting.create(dir.resolve("ours.luks"), 5 << 20, "cipher-alg", alg, "cipher-mode", mode,
                "ivgen-alg", ivgen, "hash-alg", hash);
        byte[] data = TestGraphs.randomBytes(33, 5 << 20);
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "ours.luks"), true);
            assertEquals(5 << 20, disk.size());
            disk.write(0, TestGraphs.direct(Arrays.copyOf(data, 1 << 20)), 0);
            disk.write(1 << 20, ByteBuffer.wrap(data, 1 << 20, (4 << 20) - 777).slice(), 0);
            disk.write((5 << 20) - 777, ByteBuffer.wrap(data, (5 << 20) - 777, 777).slice(), 0);
            disk.flush();
        } finally {
            g.close();
        }
        ExternalTools.ok(dir, "qemu-img", "convert", "--object", secretObject, "--image-opts", imageOpts("ours.luks"),
                "-O", "raw", "out.raw");
        assertArrayEquals(data, Files.readAllBytes(dir.resolve("out.raw")));
        String info = ExternalTools.ok(dir, "qemu-img", "info", "--object", secretObject, "--image-opts",
                imageOpts("ours.luks"));
        assertTrue(info.contains("cipher alg: " + alg), info);
    }

    @Test
    void wrongPassphraseIsAClearErrorAndWritesNothing() throws Exception {
        LuksTesting.create(dir.resolve("w.luks"), 1 << 20);
        byte[] before = Files.readAllBytes(dir.resolve("w.luks"));
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            LuksTesting.addSecret(g, "s1", "not the passphrase");
            g.open(TestGraphs.opts("driver", "file", "node-name", "f0", "filename", "w.luks"));
            var e = org.junit.jupiter.api.Assertions.assertThrows(io.diskstack.core.ConfigException.class,
                    () -> g.open(TestGraphs.opts("driver", "luks", "node-name", "l0", "file", "f0", "key-secret", "s1")));
            assertTrue(e.getMessage().contains("no key slot opens with secret 's1'"), e.getMessage());
            assertTrue(!e.getMessage().contains("not the passphrase"));
        } finally {
            g.close();
        }
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("w.luks")));
        ExternalTools.Result r = ExternalTools.run(dir, java.util.List.of("qemu-io", "--object",
                "secret,id=s0,data=wrong", "--image-opts", imageOpts("w.luks"), "-c", "read 0 512"));
        assertTrue(r.exit() != 0, "QEMU agrees the passphrase is wrong");
    }
}
