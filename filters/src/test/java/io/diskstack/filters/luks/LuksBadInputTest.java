package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.control.GraphView;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Damaged, unsupported and hostile headers: one-line errors naming file and field, never garbage. */
class LuksBadInputTest {
    @TempDir
    Path dir;

    private ConfigException openFails(String file) {
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            ConfigException e = assertThrows(ConfigException.class, () -> LuksTesting.openLuks(g, file));
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            assertTrue(e.getMessage().contains("blockdev 'l0' (luks)"), e.getMessage());
            assertFalse(e.getMessage().contains(LuksTesting.PASS), "the passphrase leaked: " + e.getMessage());
            return e;
        } finally {
            g.close();
        }
    }

    private void assertMessage(String file, String... parts) {
        String m = openFails(file).getMessage();
        for (String p : parts) {
            assertTrue(m.contains(p), "'" + p + "' missing from: " + m);
        }
    }

    private Path luks1() throws IOException {
        Path p = dir.resolve("v1.img");
        LuksTesting.create(p, 1 << 20);
        return p;
    }

    private Path luks2() throws IOException {
        Path p = dir.resolve("v2.img");
        LuksTesting.create(p, 1 << 20, "format", "luks2");
        return p;
    }

    private static void patch(Path p, long offset, byte[] bytes) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), offset);
        }
    }

    private static byte[] field(String s, int len) {
        return Arrays.copyOf(s.getBytes(StandardCharsets.US_ASCII), len);
    }

    @Test
    void fileTooSmall() throws IOException {
        Files.write(dir.resolve("tiny.img"), new byte[1000]);
        assertMessage("tiny.img", "tiny.img", "too small to hold a LUKS header");
    }

    @Test
    void notLuksAtAll() throws IOException {
        Files.write(dir.resolve("zero.img"), new byte[1 << 16]);
        assertMessage("zero.img", "zero.img", "'magic'");
    }

    @Test
    void luks1UnsupportedCipherHashAndKeySize() throws IOException {
        Path p = luks1();
        byte[] good = Files.readAllBytes(p);
        patch(p, 8, field("serpent", 32));
        assertMessage("v1.img", "v1.img", "'cipher-name'", "serpent");
        Files.write(p, good);
        patch(p, 72, field("whirlpool", 32));
        assertMessage("v1.img", "'hash-spec'", "whirlpool");
        Files.write(p, good);
        patch(p, 108, new byte[] {0, 0, 0, 40});
        assertMessage("v1.img", "'key-bytes'", "40");
        Files.write(p, good);
        patch(p, 40, field("xts-benbi", 32));
        assertMessage("v1.img", "'cipher-mode'", "benbi");
    }

    @Test
    void luks1PayloadPastTheEnd() throws IOException {
        Path p = luks1();
        patch(p, 104, new byte[] {0, 1, 0, 0});
        assertMessage("v1.img", "'payload-offset'", "past the end");
    }

    @Test
    void luks1PayloadOverlappingTheHeaderOrKeyMaterial() throws IOException {
        Path p = luks1();
        byte[] good = Files.readAllBytes(p);
        patch(p, 104, new byte[] {0, 0, 0, 0});
        assertMessage("v1.img", "v1.img", "'payload-offset'", "inside the header");
        Files.write(p, good);
        patch(p, 104, new byte[] {0, 0, 0, 16});
        assertMessage("v1.img", "v1.img", "key slot 0", "payload");
    }

    @Test
    void luks2SegmentOverlappingTheHeaderOrKeySlots() throws Exception {
        Path p = luks2();
        String good = json(p);
        assertTrue(good.contains("\"offset\":\"16777216\""), good);
        rewriteJson(p, good.replace("\"offset\":\"16777216\"", "\"offset\":\"0\""), true);
        assertMessage("v2.img", "v2.img", "segment 'offset'", "inside the header");
        rewriteJson(p, good.replace("\"offset\":\"16777216\"", "\"offset\":\"1048576\""), true);
        assertMessage("v2.img", "segment 'offset'", "inside the header and key slot area");
        rewriteJson(p, good.replace("\"offset\":\"32768\",\"size\":\"258048\"",
                "\"offset\":\"32768\",\"size\":\"9223372036854775807\""), true);
        assertMessage("v2.img", "'keyslots.0.area'", "outside the keyslots area");
        rewriteJson(p, good.replace("\"offset\":\"32768\"", "\"offset\":\"9223372036854775807\""), true);
        assertMessage("v2.img", "'keyslots.0.area'", "outside the keyslots area");
    }

    @Test
    void luks1SlotOverlappingAnother() throws IOException {
        Path p = luks1();
        patch(p, 208 + 48 + 40, new byte[] {0, 0, 0, 9});
        assertMessage("v1.img", "key slot 1", "overlaps");
    }

    @Test
    void corruptKeyMaterialIsAWrongKeyNotGarbage() throws IOException {
        Path p = luks1();
        patch(p, 4096 + 100, new byte[64]);
        assertMessage("v1.img", "no key slot opens with secret 's0'");
    }

    /** Replaces the JSON of both LUKS2 header copies and fixes their checksums. */
    private static void rewriteJson(Path p, String json, boolean fixChecksum) throws Exception {
        byte[] img = Files.readAllBytes(p);
        LuksTesting.rewriteLuks2Json(img, json, fixChecksum);
        Files.write(p, img);
    }

    private static String json(Path p) throws IOException {
        return LuksTesting.luks2Json(Files.readAllBytes(p));
    }

    @Test
    void luks2MalformedJson() throws Exception {
        Path p = luks2();
        rewriteJson(p, "{\"keyslots\": {\"0\": [1, 2", true);
        assertMessage("v2.img", "v2.img", "LUKS2 JSON area", "malformed");
    }

    @Test
    void luks2JsonWithoutTerminator() throws Exception {
        Path p = luks2();
        rewriteJson(p, " ".repeat(16384 - 4096), true);
        assertMessage("v2.img", "LUKS2 JSON area", "NUL-terminated");
    }

    @Test
    void luks2OversizedHeader() throws Exception {
        Path p = luks2();
        patch(p, 8, ByteBuffer.allocate(8).putLong(0, 64L << 20).array());
        patch(p, 16384 + 8, ByteBuffer.allocate(8).putLong(0, 64L << 20).array());
        assertMessage("v2.img", "'hdr_size'", "not a valid size");
    }

    @Test
    void luks2UnsupportedFieldsAreNamed() throws Exception {
        Path p = luks2();
        String good = json(p);
        rewriteJson(p, good.replace("\"aes-xts-plain64\",\"sector_size\"", "\"serpent-xts-plain64\",\"sector_size\""),
                true);
        assertMessage("v2.img", "'segments.0.encryption'", "serpent");
        rewriteJson(p, good.replace("\"json_size\":\"12288\"", "\"json_size\":\"999\""), true);
        assertMessage("v2.img", "'config.json_size'");
        rewriteJson(p, good.replace("\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\"",
                "\"type\":\"scrypt\",\"hash\":\"sha256\",\"iterations\""), true);
        assertMessage("v2.img", "'keyslots.0.kdf.type'", "scrypt");
        // text from the header is escaped: a hostile value cannot break the message in two
        rewriteJson(p, good.replace("\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\"",
                "\"type\":\"scr\\nypt\\u001b[2J\",\"hash\":\"sha256\",\"iterations\""), true);
        assertMessage("v2.img", "'keyslots.0.kdf.type' 'scr\\x0aypt\\x1b[2J' is not supported");
        rewriteJson(p, good.replace("\"sector_size\":512", "\"sector_size\":8192"), true);
        assertMessage("v2.img", "'segments.0.sector_size'", "8192");
        rewriteJson(p, good.replace("\"offset\":\"16777216\"", "\"offset\":\"999999999488\""), true);
        assertMessage("v2.img", "'offset'", "past the end");
    }

    @Test
    void luks2BadPrimaryFallsBackToTheSecondary() throws Exception {
        Path p = luks2();
        patch(p, 4096 + 10, "XXXX".getBytes(StandardCharsets.US_ASCII));
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "v2.img"), true);
            disk.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}), 0);
            ByteBuffer b = ByteBuffer.allocate(3);
            disk.read(0, b);
            assertArrayEquals(new byte[] {1, 2, 3}, b.array());
        } finally {
            g.close();
        }
        patch(p, 16384 + 4096 + 10, "XXXX".getBytes(StandardCharsets.US_ASCII));
        assertMessage("v2.img", "'csum'", "both header copies");
    }

    @Test
    void theGraphViewShowsNoKeyMaterial() throws IOException {
        luks1();
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            g.addBackend("d", LuksTesting.openLuks(g, "v1.img"), true);
            String view = GraphView.render(g);
            assertTrue(view.contains("LUKS1 aes-xts-plain64 512-bit"), view);
            assertFalse(view.contains(LuksTesting.PASS), view);
            assertFalse(view.toLowerCase(java.util.Locale.ROOT).contains("s0"), "not even the secret id: " + view);
        } finally {
            g.close();
        }
    }

    // ---- hostile costs and key derivations that cannot run here ----

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    /** Rewrites the LUKS2 JSON of {@code p} through {@code edit} (both copies, checksums fixed). */
    private static void editJson(Path p, java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> edit)
            throws Exception {
        var tree = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(json(p));
        edit.accept(tree);
        rewriteJson(p, JSON.writeValueAsString(tree), true);
    }

    private static com.fasterxml.jackson.databind.node.ObjectNode at(com.fasterxml.jackson.databind.JsonNode root,
                                                                     String... path) {
        com.fasterxml.jackson.databind.JsonNode n = root;
        for (String k : path) {
            n = n.get(k);
        }
        return (com.fasterxml.jackson.databind.node.ObjectNode) n;
    }

    private static void argon2(com.fasterxml.jackson.databind.node.ObjectNode kdf, long time, long memoryKiB, int cpus) {
        kdf.removeAll();
        kdf.put("type", "argon2id");
        kdf.put("time", time);
        kdf.put("memory", memoryKiB);
        kdf.put("cpus", cpus);
        kdf.put("salt", java.util.Base64.getEncoder().encodeToString(new byte[32]));
    }

    @Test
    void luks2HostileDigestAndKdfCostsAreNamed() throws Exception {
        Path p = luks2();
        byte[] good = Files.readAllBytes(p);
        editJson(p, t -> at(t, "digests", "0").put("iterations", 0));
        assertMessage("v2.img", "v2.img", "'digests.0.iterations'", "out of range");
        Files.write(p, good);
        editJson(p, t -> at(t, "digests", "0").put("iterations", 1L << 40));
        assertMessage("v2.img", "'digests.0.iterations'", "out of range");
        Files.write(p, good);
        editJson(p, t -> at(t, "digests", "0").put("digest", java.util.Base64.getEncoder().encodeToString(new byte[8])));
        assertMessage("v2.img", "'digests.0.digest'", "8 bytes");
        Files.write(p, good);
        editJson(p, t -> at(t, "digests", "0").put("digest", java.util.Base64.getEncoder().encodeToString(new byte[65])));
        assertMessage("v2.img", "'digests.0.digest'", "65 bytes");
        Files.write(p, good);
        editJson(p, t -> at(t, "keyslots", "0", "kdf").put("iterations", 1L << 33));
        assertMessage("v2.img", "'keyslots.0.kdf.iterations'", "out of range");
        Files.write(p, good);
        editJson(p, t -> argon2(at(t, "keyslots", "0", "kdf"), 1, 8L << 20, 4));
        assertMessage("v2.img", "'keyslots.0.kdf.memory'", "out of range");
        Files.write(p, good);
        editJson(p, t -> argon2(at(t, "keyslots", "0", "kdf"), 4, 1 << 20, 65));
        assertMessage("v2.img", "'keyslots.0.kdf.cpus'", "out of range");
        Files.write(p, good);
        editJson(p, t -> argon2(at(t, "keyslots", "0", "kdf"), 1 << 20, 1 << 20, 4));
        assertMessage("v2.img", "'keyslots.0.kdf.time'", "absurd");
    }

    /**
     * A slot whose Argon2 needs more memory than this JVM has is skipped quickly with a clear
     * reason (never an OutOfMemoryError), and the other slots still open the volume.
     */
    @Test
    void argon2SlotsBeyondTheMemoryLimitAreSkipped() throws Exception {
        Path p = luks2();
        assertEquals(1, LuksKeySlots.addKey(p, new io.diskstack.core.objects.Secret("s0",
                LuksTesting.PASS.getBytes(StandardCharsets.UTF_8)), new io.diskstack.core.objects.Secret("n",
                "other passphrase".getBytes(StandardCharsets.UTF_8)), -1, 1));
        // 4 GiB: the most a header may ask for, and more than this test JVM's heap.
        editJson(p, t -> argon2(at(t, "keyslots", "0", "kdf"), 1, 4L << 20, 4));
        long start = System.nanoTime();
        String m = openFails("v2.img").getMessage();
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "fails fast");
        assertTrue(m.startsWith("blockdev 'l0' (luks): no key slot opens with secret 's0' (not tried: key slot 0: "
                + "argon2id needs 4096 MiB of memory, above the limit of "), m);
        // The other slot opens it.
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            LuksTesting.addSecret(g, "s1", "other passphrase");
            g.open(TestGraphs.opts("driver", "file", "node-name", "f0", "filename", "v2.img"));
            g.open(TestGraphs.opts("driver", "luks", "node-name", "l0", "file", "f0", "key-secret", "s1"));
        } finally {
            g.close();
        }
        // With only the unusable slot, the error says nothing was tried (not "wrong passphrase").
        LuksKeySlots.killSlot(p, 1);
        m = openFails("v2.img").getMessage();
        assertTrue(m.startsWith("blockdev 'l0' (luks): no key slot could be tried with secret 's0': key slot 0: "
                + "argon2id needs 4096 MiB"), m);
    }

    // ---- a hostile master-key digest cost fails in seconds, everywhere the header is read ----

    /** Asserts that {@code body} fails with a one-line ConfigException naming the file and the field, quickly. */
    private static String failsFast(String file, String field, org.junit.jupiter.api.function.Executable body) {
        long start = System.nanoTime();
        ConfigException e = assertThrows(ConfigException.class, body);
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue(millis < 10_000, "took " + millis + " ms: " + e.getMessage());
        String m = e.getMessage();
        assertFalse(m.contains("\n"), m);
        assertTrue(m.contains(file) && m.contains(field) && m.contains("(the limit is 120 s)"), m);
        return m;
    }

    /** The digest cost goes through the same bound for the mount, the key-slot commands and the control files. */
    private void digestCostFailsFastEverywhere(Path p, String field, Runnable makeHostile) throws Exception {
        var pass = new io.diskstack.core.objects.Secret("s0", LuksTesting.PASS.getBytes(StandardCharsets.UTF_8));
        var other = new io.diskstack.core.objects.Secret("n", "another".getBytes(StandardCharsets.UTF_8));
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            LuksTesting.openLuks(g, p.getFileName().toString());
            Files.writeString(dir.resolve("new.key"), "another");
            var files = ((io.diskstack.core.control.ControlProvider) g.node("l0")).controlFiles();
            makeHostile.run();
            long start = System.nanoTime();
            var e = assertThrows(io.diskstack.core.BlockIOException.class,
                    () -> files.get("add-key").write("file=" + dir.resolve("new.key") + " iter-time=1"));
            assertTrue(System.nanoTime() - start < 10_000_000_000L, "the control file fails fast");
            assertEquals(io.diskstack.core.Errno.EINVAL, e.errno());
            assertTrue(e.getMessage().contains(p.getFileName().toString()) && e.getMessage().contains(field),
                    e.getMessage());
            assertThrows(io.diskstack.core.BlockIOException.class, () -> files.get("remove-key").write("secret=s0"));
        } finally {
            g.close();
        }
        String m = failsFast(p.getFileName().toString(), field, () -> {
            try (BlockGraph again = TestGraphs.newGraph(dir)) {
                LuksTesting.openLuks(again, p.getFileName().toString());
            }
        });
        assertTrue(m.startsWith("blockdev 'l0' (luks): '"), m);
        failsFast(p.toString(), field, () -> LuksKeySlots.listSlots(p));
        failsFast(p.toString(), field, () -> LuksKeySlots.addKey(p, pass, other, -1, 1));
        failsFast(p.toString(), field, () -> LuksKeySlots.removeKey(p, pass));
    }

    @Test
    @org.junit.jupiter.api.Timeout(value = 120, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void luks1DigestIterationsOverTheLimitFailInSeconds() throws Exception {
        Path p = luks1();
        digestCostFailsFastEverywhere(p, "LUKS1 'mk-digest-iter'", () -> {
            try {
                patch(p, 164, new byte[] {0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff});
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    @Test
    @org.junit.jupiter.api.Timeout(value = 120, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void luks2DigestIterationsOverTheLimitFailInSeconds() throws Exception {
        Path p = luks2();
        digestCostFailsFastEverywhere(p, "LUKS2 'digests.0.iterations'", () -> {
            try {
                editJson(p, t -> at(t, "digests", "0").put("iterations", 4294967295L));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    /** Key slot costs go through the same bound: a PBKDF2 or Argon2 slot over it is skipped, and named. */
    @Test
    @org.junit.jupiter.api.Timeout(value = 120, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void luks2SlotCostsOverTheLimitAreSkippedInSeconds() throws Exception {
        Path p = luks2();
        editJson(p, t -> at(t, "keyslots", "0", "kdf").put("iterations", 4294967295L));
        long start = System.nanoTime();
        String m = openFails("v2.img").getMessage();
        assertTrue(System.nanoTime() - start < 10_000_000_000L, "fails fast");
        assertTrue(m.contains("key slot 0: pbkdf2-sha256 with 4294967295 iterations would take about")
                && m.contains("(the limit is 120 s)"), m);
        // Argon2 costs are estimated from a calibration too (headers cap them at 256 GiB of work,
        // which only a slow machine takes two minutes for: the bound itself is checked directly)
        long t0 = System.nanoTime();
        String why = KdfCost.argon2("argon2id", 1 << 20, 4L << 20);
        assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "the calibration is short");
        assertTrue(why != null && why.startsWith("argon2id with 1048576 passes over 4194304 KiB would take about")
                && why.endsWith(" s here (the limit is 120 s)"), why);
        assertEquals(null, KdfCost.argon2("argon2id", 4, 64));
    }
}
