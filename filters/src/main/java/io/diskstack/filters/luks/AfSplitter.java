package io.diskstack.filters.luks;

import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * The LUKS anti-forensic splitter (LUKS1 spec 2.4, hash extension H1): a key of L bytes becomes
 * {@code stripes} × L bytes, all of which are needed to get it back.
 */
final class AfSplitter {
    private AfSplitter() {}

    static byte[] split(byte[] key, int stripes, LuksHash hash, SecureRandom random) {
        int len = key.length;
        byte[] out = new byte[len * stripes];
        byte[] d = new byte[len];
        MessageDigest md = hash.newDigest();
        for (int i = 0; i < stripes - 1; i++) {
            byte[] s = new byte[len];
            random.nextBytes(s);
            System.arraycopy(s, 0, out, i * len, len);
            xorInto(d, s, 0);
            diffuse(d, md);
            Arrays.fill(s, (byte) 0);
        }
        int last = (stripes - 1) * len;
        for (int j = 0; j < len; j++) {
            out[last + j] = (byte) (d[j] ^ key[j]);
        }
        Arrays.fill(d, (byte) 0);
        return out;
    }

    static byte[] merge(byte[] material, int len, int stripes, LuksHash hash) {
        byte[] d = new byte[len];
        MessageDigest md = hash.newDigest();
        for (int i = 0; i < stripes - 1; i++) {
            xorInto(d, material, i * len);
            diffuse(d, md);
        }
        xorInto(d, material, (stripes - 1) * len);
        return d;
    }

    private static void xorInto(byte[] d, byte[] src, int off) {
        for (int j = 0; j < d.length; j++) {
            d[j] ^= src[off + j];
        }
    }

    /** Replaces each digest-sized chunk i of d by the prefix of H(be32(i) || chunk). */
    private static void diffuse(byte[] d, MessageDigest md) {
        int dl = md.getDigestLength();
        byte[] index = new byte[4];
        for (int i = 0, pos = 0; pos < d.length; i++, pos += dl) {
            int n = Math.min(dl, d.length - pos);
            index[0] = (byte) (i >>> 24);
            index[1] = (byte) (i >>> 16);
            index[2] = (byte) (i >>> 8);
            index[3] = (byte) i;
            md.update(index);
            md.update(d, pos, n);
            byte[] h = md.digest();
            System.arraycopy(h, 0, d, pos, n);
            Arrays.fill(h, (byte) 0);
        }
    }
}
