package io.diskstack.core.job;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.buffer.Zeroes;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Copies ranges from one edge to another, sparsely: a range that reads as zeroes is not written
 * where the target reads as zeroes already, and is written as zeroes (not data) elsewhere.
 */
final class Copier {
    /** The largest piece one copy moves: big enough to stream, small enough for pause and cancel to answer. */
    static final int CHUNK = 1 << 22;

    private final BlockChild target;

    Copier(BlockChild target) {
        this.target = target;
    }

    /** Copies what {@code read} returns for [offset, offset+length) (at most {@link #CHUNK}) to the target. */
    void copy(Reader read, long offset, int length) throws IOException {
        try (PooledBuffer pooled = BufferPool.acquire(length)) {
            ByteBuffer buf = pooled.buffer();
            buf.clear().limit(length);
            read.read(offset, buf);
            buf.flip();
            if (Zeroes.isAllZero(buf)) {
                zero(offset, length);
            } else {
                target.write(offset, buf);
            }
        }
    }

    /** Makes [offset, offset+length) read as zeroes on the target, writing only where it does not already. */
    void zero(long offset, long length) throws IOException {
        long end = offset + length;
        for (long pos = offset; pos < end; ) {
            BlockStatus st = target.blockStatus(pos, end - pos);
            long n = Math.min(st.length(), end - pos);
            if (!st.isZero()) {
                target.writeZeroes(pos, n, 0);
            }
            pos += n;
        }
    }

    /** Reads the source. */
    interface Reader {
        void read(long offset, ByteBuffer dst) throws IOException;
    }
}
