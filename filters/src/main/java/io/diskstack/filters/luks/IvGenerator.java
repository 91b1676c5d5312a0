package io.diskstack.filters.luks;

import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Arrays;
import javax.crypto.Cipher;

/**
 * Fills the 16-byte IVs of consecutive sectors (dm-crypt's IV generators). Sector numbers count
 * 512-byte units, whatever the encryption sector size. Not thread-safe.
 */
final class IvGenerator {
    private final CipherSpec.IvMode mode;
    private final Cipher essiv;
    private final byte[] scratch;

    IvGenerator(CipherSpec spec, byte[] volumeKey, int maxSectors) {
        this.mode = spec.ivMode();
        if (mode == CipherSpec.IvMode.ESSIV) {
            // ESSIV: IV = E_{H(key)}(sector); the IV cipher's key is the whole digest.
            MessageDigest md = spec.ivHash().newDigest();
            byte[] salt = md.digest(volumeKey);
            try (RawKey k = new RawKey(salt, "AES")) {
                essiv = Cipher.getInstance("AES/ECB/NoPadding");
                essiv.init(Cipher.ENCRYPT_MODE, k);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("ESSIV cipher", e);
            } finally {
                Arrays.fill(salt, (byte) 0);
            }
            scratch = new byte[maxSectors * 16];
        } else {
            essiv = null;
            scratch = null;
        }
    }

    /** Writes {@code count} IVs into {@code out}: sectors first, first+step, first+2·step, … */
    void fill(byte[] out, int count, long first, int step) {
        byte[] target = mode == CipherSpec.IvMode.ESSIV ? scratch : out;
        Arrays.fill(target, 0, count * 16, (byte) 0);
        long sector = first;
        for (int i = 0; i < count; i++, sector += step) {
            int p = i * 16;
            switch (mode) {
                case PLAIN -> Bytes.LE_INT.set(target, p, (int) sector);
                case PLAIN64, ESSIV -> Bytes.LE_LONG.set(target, p, sector);
                default -> { }
            }
        }
        if (essiv != null) {
            try {
                essiv.update(scratch, 0, count * 16, out, 0);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("ESSIV encryption", e);
            }
        }
    }

    void wipe() {
        if (scratch != null) {
            Arrays.fill(scratch, (byte) 0);
        }
    }
}
