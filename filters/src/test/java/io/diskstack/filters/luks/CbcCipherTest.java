package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Random;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Our CBC sector cipher against the JDK's CBC initialised per sector with the dm-crypt IV. */
class CbcCipherTest {
    @ParameterizedTest
    @CsvSource({"cbc-plain64,32,512", "cbc-plain64,16,4096", "cbc-essiv:sha256,32,512", "cbc-plain,32,1024",
        "cbc-essiv:sha256,16,2048"})
    void matchesTheJdkSectorBySector(String mode, int keyBytes, int sectorSize) throws Exception {
        Random r = new Random(keyBytes * 31L + sectorSize);
        byte[] key = new byte[keyBytes];
        r.nextBytes(key);
        CipherSpec spec = CipherSpec.parse("aes", mode, keyBytes);
        // More than one 64 KiB chunk, starting at an odd sector: chaining must reset at every sector.
        byte[] plain = new byte[SectorCipher.CHUNK * 2 + 3 * sectorSize];
        r.nextBytes(plain);
        long firstIv = 12345L * (sectorSize / 512);
        byte[] ours = plain.clone();
        try (SectorCipher c = spec.newCipher(key, sectorSize)) {
            c.encrypt(ours, firstIv);
            c.encrypt(new byte[sectorSize], 7); // state carried between calls must not matter
            byte[] again = plain.clone();
            c.encrypt(again, firstIv);
            assertArrayEquals(ours, again);
            byte[] back = ours.clone();
            c.decrypt(back, firstIv);
            assertArrayEquals(plain, back);
        }
        Cipher ref = Cipher.getInstance("AES/CBC/NoPadding");
        byte[] ivs = new byte[16];
        IvGenerator gen = new IvGenerator(spec, key, 1);
        for (int s = 0; s < plain.length / sectorSize; s++) {
            gen.fill(ivs, 1, firstIv + (long) s * (sectorSize / 512), 1);
            ref.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new IvParameterSpec(ivs));
            byte[] expected = ref.doFinal(plain, s * sectorSize, sectorSize);
            byte[] got = java.util.Arrays.copyOfRange(ours, s * sectorSize, (s + 1) * sectorSize);
            assertArrayEquals(expected, got, "sector " + s);
        }
    }
}
