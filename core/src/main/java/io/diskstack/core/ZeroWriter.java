package io.diskstack.core;

import io.diskstack.core.buffer.BufferPool;
import java.io.IOException;
import java.nio.ByteBuffer;

/** Writes zeroes as data, for nodes that have no cheaper way. */
final class ZeroWriter {
    private ZeroWriter() {}

    static void writeZeroBuffers(BlockNode node, long offset, long length, int flags) throws IOException {
        int chunkFlags = flags & ~(RequestFlags.MAY_UNMAP | RequestFlags.NO_FALLBACK);
        long done = 0;
        while (done < length) {
            int n = (int) Math.min(length - done, BufferPool.ZERO_BUFFER_SIZE);
            ByteBuffer zeroes = BufferPool.zeroes(n);
            node.write(offset + done, zeroes, chunkFlags);
            done += n;
        }
    }
}
