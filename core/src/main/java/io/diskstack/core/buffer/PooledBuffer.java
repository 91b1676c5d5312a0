package io.diskstack.core.buffer;

import java.nio.ByteBuffer;

/** A buffer on loan from {@link BufferPool}; close it to return it. */
public final class PooledBuffer implements AutoCloseable {
    private final BufferPool.SizeClass owner;
    private final ByteBuffer buffer;
    private boolean onLoan;

    PooledBuffer(BufferPool.SizeClass owner, ByteBuffer buffer, int size) {
        this.owner = owner;
        this.buffer = buffer;
        reset(size);
    }

    void reset(int size) {
        buffer.clear().limit(size);
        onLoan = true;
    }

    /** The buffer: position 0 and limit at the requested size when acquired. */
    public ByteBuffer buffer() {
        return buffer;
    }

    @Override
    public void close() {
        if (onLoan) {
            onLoan = false;
            if (owner != null) {
                owner.offer(this);
            }
        }
    }
}
