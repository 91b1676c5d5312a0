package io.diskstack.filters.luks;

import java.util.Arrays;
import javax.crypto.SecretKey;

/**
 * Key bytes handed to a JDK {@link javax.crypto.Cipher} or {@link javax.crypto.Mac} at init,
 * then wiped by {@link #close}. {@code SecretKeySpec} keeps a private copy of the key that
 * nothing can wipe (its destroy() is not implemented); the JDK ciphers only read the key at
 * init (the expanded key schedule they keep is out of our reach either way).
 */
final class RawKey implements SecretKey, AutoCloseable {
    private static final long serialVersionUID = 1L;

    private final byte[] key;
    private final String algorithm;
    private boolean destroyed;

    RawKey(byte[] key, int offset, int length, String algorithm) {
        this.key = Arrays.copyOfRange(key, offset, offset + length);
        this.algorithm = algorithm;
    }

    RawKey(byte[] key, String algorithm) {
        this(key, 0, key.length, algorithm);
    }

    @Override
    public String getAlgorithm() {
        return algorithm;
    }

    @Override
    public String getFormat() {
        return "RAW";
    }

    /** A copy, as SecretKeySpec gives (the JDK reads it once, at init). */
    @Override
    public synchronized byte[] getEncoded() {
        if (destroyed) {
            throw new IllegalStateException("the key was destroyed");
        }
        return key.clone();
    }

    @Override
    public synchronized void destroy() {
        Arrays.fill(key, (byte) 0);
        destroyed = true;
    }

    @Override
    public synchronized boolean isDestroyed() {
        return destroyed;
    }

    @Override
    public void close() {
        destroy();
    }
}
