package io.diskstack.filters.luks;

import java.security.InvalidKeyException;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.ShortBufferException;

/**
 * PBKDF2 (RFC 8018) over the JDK's HMAC on raw bytes. The JDK's own PBKDF2WithHmac* factories
 * take a {@code char[]} and encode it as UTF-8, which would garble binary key files and
 * non-UTF-8 passphrases; LUKS feeds the passphrase bytes to HMAC unchanged.
 */
final class Pbkdf2 {
    private Pbkdf2() {}

    static byte[] derive(LuksHash hash, byte[] password, byte[] salt, long iterations, int length) {
        if (iterations < 1 || iterations > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("PBKDF2 iterations " + iterations + " out of range");
        }
        Mac mac = hash.newMac();
        // HMAC pads short keys with zeroes to the block size, so an empty key equals one zero
        // byte; SecretKeySpec refuses empty keys.
        byte[] key = password.length == 0 ? new byte[1] : password;
        try (RawKey k = new RawKey(key, hash.macName)) {
            mac.init(k);
            int hLen = hash.digestLength;
            byte[] out = new byte[length];
            byte[] u = new byte[hLen];
            byte[] t = new byte[hLen];
            byte[] index = new byte[4];
            for (int block = 1, pos = 0; pos < length; block++, pos += hLen) {
                index[0] = (byte) (block >>> 24);
                index[1] = (byte) (block >>> 16);
                index[2] = (byte) (block >>> 8);
                index[3] = (byte) block;
                mac.update(salt);
                mac.update(index);
                mac.doFinal(u, 0);
                System.arraycopy(u, 0, t, 0, hLen);
                for (long i = 1; i < iterations; i++) {
                    mac.update(u);
                    mac.doFinal(u, 0);
                    for (int j = 0; j < hLen; j++) {
                        t[j] ^= u[j];
                    }
                }
                System.arraycopy(t, 0, out, pos, Math.min(hLen, length - pos));
            }
            Arrays.fill(u, (byte) 0);
            Arrays.fill(t, (byte) 0);
            // The HMAC keeps the key's inner and outer pads: overwrite them with a dummy key's.
            try (RawKey dummy = new RawKey(new byte[1], hash.macName)) {
                mac.init(dummy);
            }
            return out;
        } catch (InvalidKeyException | ShortBufferException e) {
            throw new IllegalStateException("PBKDF2 with " + hash.macName + " failed", e);
        }
    }

    private static final java.util.Map<LuksHash, Double> RATES = new java.util.concurrent.ConcurrentHashMap<>();

    /** Iterations per millisecond on this machine (measured once per hash, about 20-80 ms). */
    static double iterationsPerMilli(LuksHash hash) {
        return RATES.computeIfAbsent(hash, h -> (double) Math.max(1, iterationsFor(h, 1000, 1)) / 1000);
    }

    /**
     * Iterations that take about {@code millis} on this machine (QEMU's and cryptsetup's
     * iter-time), at least {@code minimum}.
     */
    static long iterationsFor(LuksHash hash, long millis, long minimum) {
        byte[] pw = new byte[8];
        byte[] salt = new byte[32];
        long iterations = 1000;
        long elapsed;
        while (true) {
            long start = System.nanoTime();
            derive(hash, pw, salt, iterations, hash.digestLength);
            elapsed = System.nanoTime() - start;
            if (elapsed >= 20_000_000L || iterations >= 1L << 28) {
                break;
            }
            iterations *= 4;
        }
        double perMs = iterations / (elapsed / 1e6);
        long wanted = (long) Math.min(perMs * millis, 0xFFFFFFFFL);
        return Math.max(minimum, wanted);
    }
}
