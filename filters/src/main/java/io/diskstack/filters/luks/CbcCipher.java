package io.diskstack.filters.luks;

import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;

/**
 * AES-CBC per sector with a dm-crypt IV (plain, plain64, essiv). Decryption runs all blocks
 * through one ECB call and then XORs each with the previous ciphertext block. Encryption is
 * sequential by nature and uses the JDK's CBC, initialised once: the cipher keeps chaining from
 * the last ciphertext block C it produced, so each sector's first plaintext block is fed in as
 * P ⊕ IV ⊕ C, which the chaining turns into E(P ⊕ IV). (Re-initialising per sector with the
 * sector's IV expanded the AES key again for every 512 bytes.)
 */
final class CbcCipher extends SectorCipher {
    private final Cipher cbcEnc;
    private final Cipher ecbDec;
    private final IvGenerator ivs;
    private final byte[] ivBytes;
    /** The last ciphertext block cbcEnc produced: what it XORs into the next block it encrypts. */
    private final byte[] chain = new byte[16];

    CbcCipher(CipherSpec spec, byte[] keyBytes, int sectorSize) {
        super(sectorSize);
        try (RawKey key = new RawKey(keyBytes, "AES")) {
            cbcEnc = Cipher.getInstance("AES/CBC/NoPadding");
            cbcEnc.init(Cipher.ENCRYPT_MODE, key, new IvParameterSpec(chain));
            ecbDec = Cipher.getInstance("AES/ECB/NoPadding");
            ecbDec.init(Cipher.DECRYPT_MODE, key);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES", e);
        }
        int maxSectors = CHUNK / sectorSize;
        ivs = new IvGenerator(spec, keyBytes, maxSectors);
        ivBytes = new byte[maxSectors * 16];
    }

    @Override
    void encryptChunk(int len, long ivSector) {
        int sectors = len / sectorSize;
        ivs.fill(ivBytes, sectors, ivSector, ivStep);
        try {
            for (int s = 0; s < sectors; s++) {
                int base = s * sectorSize;
                xor16(in, base, ivBytes, s * 16);
                xor16(in, base, chain, 0);
                // update, never doFinal: the cipher keeps its chaining state across calls.
                if (cbcEnc.update(in, base, sectorSize, out, base) != sectorSize) {
                    throw new IllegalStateException("AES-CBC returned a partial sector");
                }
                System.arraycopy(out, base + sectorSize - 16, chain, 0, 16);
            }
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-CBC encryption", e);
        }
    }

    @Override
    void decryptChunk(int len, long ivSector) {
        int sectors = len / sectorSize;
        ivs.fill(ivBytes, sectors, ivSector, ivStep);
        try {
            ecbDec.update(in, 0, len, out, 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-CBC decryption", e);
        }
        for (int s = 0; s < sectors; s++) {
            int base = s * sectorSize;
            xor16(out, base, ivBytes, s * 16);
            for (int p = base + 16; p < base + sectorSize; p += 16) {
                xor16(out, p, in, p - 16);
            }
        }
    }

    private static void xor16(byte[] dst, int d, byte[] src, int s) {
        Bytes.LE_LONG.set(dst, d, (long) Bytes.LE_LONG.get(dst, d) ^ (long) Bytes.LE_LONG.get(src, s));
        Bytes.LE_LONG.set(dst, d + 8, (long) Bytes.LE_LONG.get(dst, d + 8) ^ (long) Bytes.LE_LONG.get(src, s + 8));
    }

    @Override
    public void close() {
        super.close();
        ivs.wipe();
        Arrays.fill(ivBytes, (byte) 0);
        Arrays.fill(chain, (byte) 0);
    }
}
