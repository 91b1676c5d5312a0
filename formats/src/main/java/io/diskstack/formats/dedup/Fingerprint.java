package io.diskstack.formats.dedup;

import io.diskstack.core.buffer.Zeroes;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.DigestException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * A block's fingerprint: the first 16 bytes of its SHA-256 digest, as two longs (hi, lo). The
 * JDK's SHA-256 uses the CPU's SHA extensions where it has them. A block in a direct buffer (the
 * FUSE path) is copied once into a per-thread array: the zero test and the digest both read that
 * (the digest would otherwise copy it in 4 KiB pieces itself).
 */
final class Fingerprint {
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);
    private static final ThreadLocal<State> STATE = ThreadLocal.withInitial(State::new);

    private static final class State {
        final MessageDigest sha256;
        final byte[] digest = new byte[32];
        byte[] block = new byte[Geometry.MIN_BLOCK];

        State() {
            try {
                sha256 = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("the JDK has no SHA-256", e);
            }
        }
    }

    private Fingerprint() {}

    /**
     * Puts the fingerprint of the bytes from the block's position to its limit (a multiple of 8)
     * at out[at], out[at + 1]; returns false, leaving out alone, if they are all zero.
     */
    static boolean of(ByteBuffer block, long[] out, int at) {
        State s = STATE.get();
        int len = block.remaining();
        byte[] b;
        int off;
        if (block.hasArray()) {
            b = block.array();
            off = block.arrayOffset() + block.position();
        } else {
            if (s.block.length < len) {
                s.block = new byte[len];
            }
            b = s.block;
            off = 0;
            block.get(block.position(), b, 0, len);
        }
        if (Zeroes.isAllZero(b, off, len)) {
            return false;
        }
        MessageDigest md = s.sha256;
        md.update(b, off, len);
        try {
            md.digest(s.digest, 0, 32);
        } catch (DigestException e) {
            throw new IllegalStateException(e);
        }
        out[at] = (long) LONGS.get(s.digest, 0);
        out[at + 1] = (long) LONGS.get(s.digest, 8);
        return true;
    }
}
