package io.diskstack.filters.luks;

import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;

/**
 * XTS-AES (IEEE 1619) on the JDK's {@code AES/ECB/NoPadding}, which runs on AES-NI: JDK 17 has
 * no XTS. Per sector the tweak is T = E_K2(IV); block j is C = E_K1(P ⊕ T·αʲ) ⊕ T·αʲ. All the
 * tweaks of a chunk are encrypted in one ECB call and all its blocks in another, so the JDK's
 * multi-block AES loop does the work; only the GF(2¹²⁸) doubling and the XORs are ours.
 * Sectors are whole blocks, so ciphertext stealing never applies.
 */
final class XtsCipher extends SectorCipher {
    private final Cipher dataEnc;
    private final Cipher dataDec;
    private final Cipher tweakEnc;
    private final IvGenerator ivs;
    private final byte[] ivPlain;
    private final byte[] tweaks;

    XtsCipher(CipherSpec spec, byte[] key, int sectorSize) {
        super(sectorSize);
        int half = key.length / 2;
        try (RawKey k1 = new RawKey(key, 0, half, "AES"); RawKey k2 = new RawKey(key, half, half, "AES")) {
            dataEnc = Cipher.getInstance("AES/ECB/NoPadding");
            dataEnc.init(Cipher.ENCRYPT_MODE, k1);
            dataDec = Cipher.getInstance("AES/ECB/NoPadding");
            dataDec.init(Cipher.DECRYPT_MODE, k1);
            tweakEnc = Cipher.getInstance("AES/ECB/NoPadding");
            tweakEnc.init(Cipher.ENCRYPT_MODE, k2);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/ECB/NoPadding", e);
        }
        int maxSectors = CHUNK / sectorSize;
        // The IV generator of XTS is keyed by the whole key (ESSIV hashes all of it).
        ivs = new IvGenerator(spec, key, maxSectors);
        ivPlain = new byte[maxSectors * 16];
        tweaks = new byte[maxSectors * 16];
    }

    @Override
    void encryptChunk(int len, long ivSector) {
        computeTweaks(len, ivSector);
        xorTweaks(in, len);
        ecb(dataEnc, len);
        xorTweaks(out, len);
    }

    @Override
    void decryptChunk(int len, long ivSector) {
        computeTweaks(len, ivSector);
        xorTweaks(in, len);
        ecb(dataDec, len);
        xorTweaks(out, len);
    }

    private void computeTweaks(int len, long ivSector) {
        int sectors = len / sectorSize;
        ivs.fill(ivPlain, sectors, ivSector, ivStep);
        try {
            tweakEnc.update(ivPlain, 0, sectors * 16, tweaks, 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("XTS tweak encryption", e);
        }
    }

    private void ecb(Cipher c, int len) {
        try {
            c.update(in, 0, len, out, 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("XTS block encryption", e);
        }
    }

    /** buf ^= T·αʲ for every block j of every sector, T the sector's encrypted tweak. */
    private void xorTweaks(byte[] buf, int len) {
        int blocks = sectorSize >> 4;
        for (int s = 0, p = 0; p < len; s++) {
            long lo = (long) Bytes.LE_LONG.get(tweaks, s * 16);
            long hi = (long) Bytes.LE_LONG.get(tweaks, s * 16 + 8);
            for (int b = 0; b < blocks; b++, p += 16) {
                Bytes.LE_LONG.set(buf, p, (long) Bytes.LE_LONG.get(buf, p) ^ lo);
                Bytes.LE_LONG.set(buf, p + 8, (long) Bytes.LE_LONG.get(buf, p + 8) ^ hi);
                // Multiply by α in GF(2^128), little-endian: shift left one bit, reduce by x^7+x^2+x+1.
                long carry = hi >> 63;
                hi = (hi << 1) | (lo >>> 63);
                lo = (lo << 1) ^ (carry & 0x87);
            }
        }
    }

    @Override
    public void close() {
        super.close();
        ivs.wipe();
        Arrays.fill(ivPlain, (byte) 0);
        Arrays.fill(tweaks, (byte) 0);
    }
}
