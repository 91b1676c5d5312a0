package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/** The sector ciphers against IEEE 1619 (XTS-AES) test vectors and against the JDK's CBC. */
class XtsVectorsTest {
    private static final HexFormat HEX = HexFormat.of();

    /** IEEE 1619-2007 Annex B: 512-byte data units of 00 01 … ff 00 01 … ff. */
    private static byte[] pattern512() {
        byte[] p = new byte[512];
        for (int i = 0; i < p.length; i++) {
            p[i] = (byte) i;
        }
        return p;
    }

    private static byte[] xts(String key, long dataUnit, byte[] plaintext) {
        byte[] k = HEX.parseHex(key);
        try (SectorCipher c = CipherSpec.parse("aes", "xts-plain64", k.length).newCipher(k, 512)) {
            byte[] sector = Arrays.copyOf(plaintext, 512);
            c.encrypt(sector, dataUnit);
            byte[] back = sector.clone();
            c.decrypt(back, dataUnit);
            assertArrayEquals(Arrays.copyOf(plaintext, 512), back, "decrypt inverts encrypt");
            return Arrays.copyOf(sector, plaintext.length);
        }
    }

    @Test
    void vector1AllZero() {
        assertArrayEquals(HEX.parseHex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e"),
                xts("0".repeat(64), 0, new byte[32]));
    }

    @Test
    void vector2() {
        byte[] ptx = new byte[32];
        Arrays.fill(ptx, (byte) 0x44);
        assertArrayEquals(HEX.parseHex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0"),
                xts("11".repeat(16) + "22".repeat(16), 0x3333333333L, ptx));
    }

    @Test
    void vector4Aes128FullSector() {
        String ctx = "27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
                + "c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412"
                + "328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
                + "93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265"
                + "5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8"
                + "a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
                + "1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c"
                + "5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e"
                + "94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
                + "1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3"
                + "e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344"
                + "b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
                + "74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752"
                + "afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e"
                + "bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
                + "eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568";
        assertArrayEquals(HEX.parseHex(ctx),
                xts("27182818284590452353602874713526" + "31415926535897932384626433832795", 0, pattern512()));
    }

    @Test
    void vector10Aes256FullSector() {
        String ctx = "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
                + "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
                + "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
                + "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
                + "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
                + "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
                + "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
                + "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
                + "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
                + "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
                + "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
                + "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
                + "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
                + "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
                + "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
                + "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";
        assertArrayEquals(HEX.parseHex(ctx), xts(
                "2718281828459045235360287471352662497757247093699959574966967627"
                        + "3141592653589793238462643383279502884197169399375105820974944592", 0xff, pattern512()));
    }

    @Test
    void multiSectorRequestsEqualSectorBySector() {
        byte[] key = new byte[64];
        new Random(1).nextBytes(key);
        for (int sectorSize : new int[] {512, 4096}) {
            try (SectorCipher c = CipherSpec.parse("aes", "xts-plain64", 64).newCipher(key, sectorSize)) {
                byte[] data = new byte[3 * SectorCipher.CHUNK + 5 * sectorSize];
                new Random(2).nextBytes(data);
                byte[] whole = data.clone();
                c.encrypt(whole, 1000);
                int step = sectorSize / 512;
                for (int s = 0; s < data.length / sectorSize; s++) {
                    byte[] one = Arrays.copyOfRange(data, s * sectorSize, (s + 1) * sectorSize);
                    c.encrypt(one, 1000 + (long) s * step);
                    assertArrayEquals(one, Arrays.copyOfRange(whole, s * sectorSize, (s + 1) * sectorSize),
                            "sector " + s + " of " + sectorSize);
                }
                c.decrypt(whole, 1000);
                assertArrayEquals(data, whole);
            }
        }
    }

    @Test
    void cbcEssivMatchesTheJdksCbcWithAnEncryptedSectorIv() throws Exception {
        byte[] key = new byte[32];
        new Random(3).nextBytes(key);
        byte[] data = new byte[4096];
        new Random(4).nextBytes(data);
        byte[] ours = data.clone();
        try (SectorCipher c = CipherSpec.parse("aes", "cbc-essiv:sha256", 32).newCipher(key, 512)) {
            c.encrypt(ours, 77);
            byte[] salt = MessageDigest.getInstance("SHA-256").digest(key);
            Cipher essiv = Cipher.getInstance("AES/ECB/NoPadding");
            essiv.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(salt, "AES"));
            Cipher cbc = Cipher.getInstance("AES/CBC/NoPadding");
            for (int s = 0; s < 8; s++) {
                byte[] sectorNo = new byte[16];
                long n = 77 + s;
                for (int i = 0; i < 8; i++) {
                    sectorNo[i] = (byte) (n >>> (8 * i));
                }
                cbc.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new IvParameterSpec(essiv.doFinal(sectorNo)));
                byte[] expected = cbc.doFinal(data, s * 512, 512);
                assertArrayEquals(expected, Arrays.copyOfRange(ours, s * 512, s * 512 + 512), "sector " + s);
            }
            c.decrypt(ours, 77);
            assertArrayEquals(data, ours);
        }
    }

    @Test
    void cbcPlain64UsesTheSectorAsIv() throws Exception {
        byte[] key = new byte[16];
        new Random(5).nextBytes(key);
        byte[] data = new byte[512];
        new Random(6).nextBytes(data);
        byte[] ours = data.clone();
        try (SectorCipher c = CipherSpec.parse("aes", "cbc-plain64", 16).newCipher(key, 512)) {
            c.encrypt(ours, 0x0102030405L);
        }
        Cipher cbc = Cipher.getInstance("AES/CBC/NoPadding");
        cbc.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"),
                new IvParameterSpec(HEX.parseHex("0504030201000000" + "0000000000000000")));
        assertArrayEquals(cbc.doFinal(data), ours);
    }

    @Test
    void ecbIsTheJdksEcb() throws Exception {
        byte[] key = new byte[24];
        new Random(7).nextBytes(key);
        byte[] data = new byte[1024];
        new Random(8).nextBytes(data);
        byte[] ours = data.clone();
        try (SectorCipher c = CipherSpec.parse("aes", "ecb", 24).newCipher(key, 512)) {
            c.encrypt(ours, 5);
        }
        Cipher ecb = Cipher.getInstance("AES/ECB/NoPadding");
        ecb.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"));
        assertArrayEquals(ecb.doFinal(data), ours);
    }

    @Test
    void badSpecsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> CipherSpec.parse("serpent", "xts-plain64", 64));
        assertThrows(IllegalArgumentException.class, () -> CipherSpec.parse("aes", "xts-plain64", 48 + 1));
        assertThrows(IllegalArgumentException.class, () -> CipherSpec.parse("aes", "cbc-plain64", 64));
        assertThrows(IllegalArgumentException.class, () -> CipherSpec.parse("aes", "cbc-essiv", 32));
        assertThrows(IllegalArgumentException.class, () -> CipherSpec.parse("aes", "cbc-essiv:sha1", 32));
        assertThrows(IllegalArgumentException.class, () -> CipherSpec.parse("aes", "lrw-benbi", 32));
        assertThrows(IllegalArgumentException.class, () -> CipherSpec.parseLuks2("aes", 32));
    }
}
