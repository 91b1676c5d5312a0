package io.diskstack.filters.luks;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Encrypts and decrypts whole sectors, each with the IV of its sector number (counted in
 * 512-byte units, as dm-crypt and QEMU do, also for 4096-byte LUKS2 sectors). Works through
 * two private 64 KiB arrays, so the caller's buffers are never used as scratch space and a
 * request allocates nothing. Not thread-safe: {@link CipherPool} lends instances out.
 */
abstract class SectorCipher implements AutoCloseable {
    static final int CHUNK = 64 * 1024;

    final int sectorSize;
    /** IV units (512 bytes) per sector. */
    final int ivStep;
    final byte[] in = new byte[CHUNK];
    final byte[] out = new byte[CHUNK];

    SectorCipher(int sectorSize) {
        if (sectorSize < 512 || sectorSize > 4096 || Integer.bitCount(sectorSize) != 1) {
            throw new IllegalArgumentException("sector size " + sectorSize);
        }
        this.sectorSize = sectorSize;
        this.ivStep = sectorSize / 512;
    }

    /**
     * Encrypts {@code len} bytes (whole sectors) of {@code src} at {@code srcPos} into
     * {@code dst} at {@code dstPos}; the first sector has IV number {@code ivSector}. Positions
     * and limits of the buffers do not change; src and dst may be the same region.
     */
    final void encrypt(ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int len, long ivSector) {
        run(true, src, srcPos, dst, dstPos, len, ivSector);
    }

    final void decrypt(ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int len, long ivSector) {
        run(false, src, srcPos, dst, dstPos, len, ivSector);
    }

    /** Array convenience for key material and tests, in place. */
    final void encrypt(byte[] data, long ivSector) {
        ByteBuffer b = ByteBuffer.wrap(data);
        run(true, b, 0, b, 0, data.length, ivSector);
    }

    final void decrypt(byte[] data, long ivSector) {
        ByteBuffer b = ByteBuffer.wrap(data);
        run(false, b, 0, b, 0, data.length, ivSector);
    }

    private void run(boolean encrypt, ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int len, long ivSector) {
        if (len % sectorSize != 0) {
            throw new IllegalArgumentException(len + " bytes is not a whole number of " + sectorSize + "-byte sectors");
        }
        for (int done = 0; done < len; ) {
            int n = Math.min(CHUNK, len - done);
            src.get(srcPos + done, in, 0, n);
            long iv = ivSector + (long) (done / sectorSize) * ivStep;
            if (encrypt) {
                encryptChunk(n, iv);
            } else {
                decryptChunk(n, iv);
            }
            dst.put(dstPos + done, out, 0, n);
            done += n;
        }
    }

    /** Encrypts {@code in[0, len)} into {@code out[0, len)}; {@code in} may be clobbered. */
    abstract void encryptChunk(int len, long ivSector);

    abstract void decryptChunk(int len, long ivSector);

    /** Wipes the scratch arrays and this instance's copies of the key. */
    @Override
    public void close() {
        Arrays.fill(in, (byte) 0);
        Arrays.fill(out, (byte) 0);
    }
}
