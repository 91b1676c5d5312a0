package io.diskstack.filters.luks;

/**
 * One active key slot, either version: how to derive its key ({@code kdf}, output
 * {@code areaCipher.keyBytes()} bytes), where its AF-split key material lies
 * ({@code keyBytes} × {@code stripes} bytes at {@code areaOffset}, encrypted with
 * {@code areaCipher} in 512-byte sectors numbered from 0).
 */
record KeySlot(int id, Kdf kdf, CipherSpec areaCipher, long areaOffset, long areaSize, int keyBytes, int stripes,
               LuksHash afHash, int priority) {
    long materialLength() {
        return (long) keyBytes * stripes;
    }

    /** The material rounded up to whole 512-byte sectors, as it is encrypted on disk. */
    int materialSectorsBytes() {
        return (int) ((materialLength() + 511) / 512 * 512);
    }
}
