package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.objects.Secret;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Interop with cryptsetup, without device-mapper: luksDump, open --test-passphrase,
 * luksDump --dump-volume-key (the volume key oracle), and offline reencrypt with a detached
 * header (cryptsetup encrypts or decrypts the data file itself, which judges our sectors and
 * IVs). PBKDF costs are forced tiny.
 */
class LuksCryptsetupInteropTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    @BeforeEach
    void tools() throws IOException {
        ExternalTools.require("cryptsetup");
        Files.writeString(dir.resolve("key.txt"), LuksTesting.PASS);
    }

    private String cs(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("cryptsetup", "-q"));
        cmd.addAll(List.of(args));
        return ExternalTools.ok(dir, cmd.toArray(new String[0]));
    }

    private static final String[] CHEAP_PBKDF2 = {"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"};

    private String[] format(String type, String cipher, int keyBits, String... extra) {
        List<String> a = new ArrayList<>(List.of("luksFormat", "--type", type, "--cipher", cipher, "--key-size",
                Integer.toString(keyBits), "--key-file", "key.txt"));
        a.addAll(List.of(extra));
        return a.toArray(new String[0]);
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** The volume key as cryptsetup sees it. */
    private byte[] cryptsetupVolumeKey(String image) throws Exception {
        String out = cs("luksDump", "--dump-volume-key", "--key-file", "key.txt", image);
        Matcher m = Pattern.compile("MK dump:\\s*((?:[0-9a-f]{2}\\s*)+)").matcher(out);
        assertTrue(m.find(), out);
        return HexFormat.of().parseHex(m.group(1).replaceAll("\\s", ""));
    }

    /** The volume key as we unlock it. */
    private byte[] ourVolumeKey(String image) throws IOException {
        try (FileChannel ch = FileChannel.open(dir.resolve(image), StandardOpenOption.READ)) {
            HeaderDevice dev = HeaderDevice.of(ch);
            ImageRef ref = new ImageRef(null, image);
            byte[] key = KeySlots.unlock(LuksHeader.read(dev, ref), dev,
                    LuksTesting.PASS.getBytes(StandardCharsets.UTF_8), ref);
            assertTrue(key != null, "our unlock of " + image);
            return key;
        }
    }

    @ParameterizedTest
    @CsvSource({
        "luks1,aes-xts-plain64,512,pbkdf2,512",
        "luks1,aes-xts-plain64,256,pbkdf2,512",
        "luks1,aes-cbc-essiv:sha256,256,pbkdf2,512",
        "luks1,aes-cbc-plain64,128,pbkdf2,512",
        "luks2,aes-xts-plain64,512,argon2id,4096",
        "luks2,aes-xts-plain64,256,argon2i,512",
        "luks2,aes-cbc-essiv:sha256,256,pbkdf2,512",
    })
    void cryptsetupMadeImagesUnlockToTheSameVolumeKey(String type, String cipher, int bits, String pbkdf,
                                                      int sector) throws Exception {
        Files.write(dir.resolve("c.img"), new byte[(int) (20 * MIB)]);
        String[] cost = pbkdf.equals("pbkdf2") ? CHEAP_PBKDF2
                : new String[] {"--pbkdf", pbkdf, "--pbkdf-force-iterations", "4", "--pbkdf-memory", "64"};
        String[] args = concat(format(type, cipher, bits, cost), "--hash", "sha256");
        if (type.equals("luks2")) {
            args = concat(args, "--sector-size", Integer.toString(sector));
        }
        cs(concat(args, "c.img"));
        assertArrayEquals(cryptsetupVolumeKey("c.img"), ourVolumeKey("c.img"));
        String dump = cs("luksDump", "c.img");
        Matcher m = Pattern.compile(type.equals("luks1") ? "Payload offset:\\s*(\\d+)" : "offset: (\\d+) \\[bytes\\]")
                .matcher(dump);
        assertTrue(m.find(), dump);
        long payload = Long.parseLong(m.group(1)) * (type.equals("luks1") ? 512 : 1);
        // And the node opens with the expected size.
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "c.img"), false);
            assertEquals(20 * MIB - payload, disk.size());
            assertTrue(g.nodes().stream().anyMatch(n -> n.details().startsWith(type.toUpperCase())));
        } finally {
            g.close();
        }
    }

    /**
     * cryptsetup's defaults (argon2id, aes-xts-plain64 512-bit) with the memory and time cut
     * down so the test stays fast; the default 1 GiB memory cost is a matter of heap size (the
     * launcher's), and the memory-limit path is checked in LuksBadInputTest.
     */
    @Test
    void cryptsetupDefaultLuks2Opens() throws Exception {
        Files.write(dir.resolve("d.img"), new byte[(int) (20 * MIB)]);
        cs("luksFormat", "--type", "luks2", "--key-file", "key.txt", "--pbkdf-memory", "65536", "--iter-time", "100",
                "d.img");
        String dump = cs("luksDump", "d.img");
        assertTrue(dump.contains("argon2id"), dump);
        assertArrayEquals(cryptsetupVolumeKey("d.img"), ourVolumeKey("d.img"));
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "d.img"), false);
            assertEquals(4 * MIB, disk.size());
        } finally {
            g.close();
        }
    }

    @Test
    void cryptsetupMadeLuks1WrittenByQemuReadsBackThroughUs() throws Exception {
        ExternalTools.require("qemu-io");
        Files.write(dir.resolve("c1.img"), new byte[(int) (6 * MIB)]);
        cs(concat(format("luks1", "aes-xts-plain64", 512, CHEAP_PBKDF2), "c1.img"));
        ExternalTools.ok(dir, "qemu-io", "--object", "secret,id=s0,file=" + dir.resolve("key.txt"), "--image-opts",
                "driver=luks,key-secret=s0,file.filename=" + dir.resolve("c1.img"), "-c", "write -P 0x6b 100k 300k");
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "c1.img"), false);
            ByteBuffer b = ByteBuffer.allocate(300 * 1024);
            disk.read(100 * 1024, b);
            byte[] expected = new byte[300 * 1024];
            Arrays.fill(expected, (byte) 0x6b);
            assertArrayEquals(expected, b.array());
        } finally {
            g.close();
        }
    }

    /** cryptsetup encrypts known plaintext in place (detached header); we must read it back. */
    @ParameterizedTest
    @CsvSource({"aes-xts-plain64,512,4096", "aes-xts-plain64,256,512", "aes-cbc-essiv:sha256,256,512",
        "aes-cbc-plain64,256,1024"})
    void dataEncryptedByCryptsetupDecryptsThroughUs(String cipher, int bits, int sector) throws Exception {
        byte[] plain = TestGraphs.randomBytes(sector, (int) (3 * MIB));
        Files.write(dir.resolve("data.img"), plain);
        cs("reencrypt", "--encrypt", "--type", "luks2", "--header", "hdr.img", "--force-offline-reencrypt",
                "--key-file", "key.txt", "--cipher", cipher, "--key-size", Integer.toString(bits), "--sector-size",
                Integer.toString(sector), "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "data.img");
        assertNotEquals(Arrays.hashCode(plain), Arrays.hashCode(Files.readAllBytes(dir.resolve("data.img"))));
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            g.open(TestGraphs.opts("driver", "file", "node-name", "h0", "filename", "hdr.img"));
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "data.img", "header", "h0"), false);
            assertEquals(plain.length, disk.size());
            ByteBuffer b = ByteBuffer.allocateDirect(plain.length);
            disk.read(0, b);
            assertArrayEquals(plain, TestGraphs.toArray(b));
        } finally {
            g.close();
        }
    }

    /** We encrypt known plaintext through our node; cryptsetup decrypts the file in place. */
    @ParameterizedTest
    @CsvSource({"aes-xts-plain64,512,4096", "aes-xts-plain64,256,512", "aes-cbc-essiv:sha256,256,2048"})
    void dataWeEncryptIsDecryptedByCryptsetup(String cipher, int bits, int sector) throws Exception {
        Files.write(dir.resolve("data.img"), new byte[(int) (3 * MIB)]);
        cs("reencrypt", "--encrypt", "--type", "luks2", "--header", "hdr.img", "--force-offline-reencrypt",
                "--key-file", "key.txt", "--cipher", cipher, "--key-size", Integer.toString(bits), "--sector-size",
                Integer.toString(sector), "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "data.img");
        byte[] plain = TestGraphs.randomBytes(sector + 1, (int) (3 * MIB));
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            g.open(TestGraphs.opts("driver", "file", "node-name", "h0", "filename", "hdr.img"));
            BlockBackend disk = g.addBackend("d", LuksTesting.openLuks(g, "data.img", "header", "h0"), true);
            disk.write(0, ByteBuffer.wrap(plain, 0, 1000), 0);  // unaligned head: read-modify-write
            disk.write(1000, ByteBuffer.wrap(plain, 1000, plain.length - 1000).slice(), 0);
            disk.flush();
        } finally {
            g.close();
        }
        cs("reencrypt", "--decrypt", "--header", "hdr.img", "--force-offline-reencrypt", "--key-file", "key.txt",
                "data.img");
        assertArrayEquals(plain, Files.readAllBytes(dir.resolve("data.img")));
    }

    @ParameterizedTest
    @CsvSource({
        "luks1,pbkdf2,512,xts",
        "luks2,pbkdf2,512,xts",
        "luks2,argon2id,4096,xts",
        "luks2,pbkdf2,512,cbc",
    })
    void imagesWeCreatePassLuksDumpAndTestPassphrase(String format, String kdf, int sector, String mode)
            throws Exception {
        List<Object> o = new ArrayList<>(List.of("format", format, "cipher-mode", mode));
        if (mode.equals("cbc")) {
            o.addAll(List.of("ivgen-alg", "essiv"));
        }
        if (format.equals("luks2")) {
            o.addAll(List.of("sector-size", Integer.toString(sector), "kdf", kdf, "kdf-memory", "64", "kdf-time", "2"));
        }
        LuksTesting.create(dir.resolve("ours.img"), 4 * MIB, o.toArray());
        String dump = cs("luksDump", "ours.img");
        assertTrue(dump.contains("Version:       \t" + format.substring(4)), dump);
        if (format.equals("luks2")) {
            assertTrue(dump.contains("sector: " + sector + " [bytes]"), dump);
            assertTrue(dump.contains("PBKDF:      " + kdf), dump);
        }
        cs("open", "--test-passphrase", "--key-file", "key.txt", "ours.img");
        Files.writeString(dir.resolve("bad.txt"), "wrong");
        assertNotEquals(0, ExternalTools.run(dir, List.of("cryptsetup", "open", "--test-passphrase", "--key-file",
                "bad.txt", "ours.img")).exit());
        assertArrayEquals(cryptsetupVolumeKey("ours.img"), ourVolumeKey("ours.img"));
    }

    @ParameterizedTest
    @CsvSource({"luks1", "luks2"})
    void keySlotsWeAddAndKillAreSeenByCryptsetup(String format) throws Exception {
        Files.write(dir.resolve("k.img"), new byte[(int) (20 * MIB)]);
        cs(concat(format(format, "aes-xts-plain64", 512, CHEAP_PBKDF2), "k.img"));
        Files.writeString(dir.resolve("new.txt"), "second passphrase");
        Path img = dir.resolve("k.img");
        Secret s0 = new Secret("s0", LuksTesting.PASS.getBytes(StandardCharsets.UTF_8));
        Secret s1 = new Secret("s1", "second passphrase".getBytes(StandardCharsets.UTF_8));
        assertEquals(3, LuksKeySlots.addKey(img, s0, s1, 3, 1));
        cs("open", "--test-passphrase", "--key-slot", "3", "--key-file", "new.txt", "k.img");
        cs("luksDump", "k.img");
        assertTrue(LuksKeySlots.listSlots(img).startsWith("0 pbkdf2"), LuksKeySlots.listSlots(img));
        // Remove the original passphrase: the new one still opens, the old one no longer does.
        assertEquals(0, LuksKeySlots.removeKey(img, s0));
        cs("open", "--test-passphrase", "--key-file", "new.txt", "k.img");
        assertNotEquals(0, ExternalTools.run(dir, List.of("cryptsetup", "open", "--test-passphrase", "--key-file",
                "key.txt", "k.img")).exit());
        var last = org.junit.jupiter.api.Assertions.assertThrows(io.diskstack.core.ConfigException.class,
                () -> LuksKeySlots.killSlot(img, 3));
        assertTrue(last.getMessage().contains("last active"), last.getMessage());
    }
}
