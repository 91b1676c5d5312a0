package io.diskstack.core.buffer;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Direct buffers aligned to 4 KiB, pooled by power-of-two size class, so the data path does not
 * allocate per request. FUSE worker threads come and go (libfuse2 starts and ends them all the
 * time), which rules out thread-local buffers; a shared pool serves them all.
 */
public final class BufferPool {
    /** Alignment of every pooled buffer: enough for O_DIRECT on any file system here. */
    public static final int ALIGNMENT = 4096;
    public static final int ZERO_BUFFER_SIZE = 1 << 20;

    private static final int MIN_SHIFT = 12;
    private static final int MAX_SHIFT = 22;
    private static final long MAX_POOLED_BYTES_PER_CLASS = 32L << 20;
    private static final SizeClass[] CLASSES = new SizeClass[MAX_SHIFT - MIN_SHIFT + 1];
    private static final ByteBuffer ZEROES = allocateAligned(ZERO_BUFFER_SIZE).asReadOnlyBuffer();

    static {
        for (int shift = MIN_SHIFT; shift <= MAX_SHIFT; shift++) {
            int capacity = 1 << shift;
            CLASSES[shift - MIN_SHIFT] = new SizeClass(capacity,
                    (int) Math.max(8, MAX_POOLED_BYTES_PER_CLASS / capacity));
        }
    }

    private BufferPool() {}

    /**
     * A buffer of at least {@code size} bytes, position 0, limit {@code size}, aligned to
     * {@link #ALIGNMENT}. Close it to give it back; never use it after that.
     */
    public static PooledBuffer acquire(int size) {
        if (size < 0) {
            throw new IllegalArgumentException("negative buffer size " + size);
        }
        int shift = Math.max(MIN_SHIFT, 32 - Integer.numberOfLeadingZeros(Math.max(size, 1) - 1));
        if (shift > MAX_SHIFT) {
            return new PooledBuffer(null, allocateAligned(size), size);
        }
        SizeClass sc = CLASSES[shift - MIN_SHIFT];
        PooledBuffer pooled = sc.poll();
        if (pooled == null) {
            pooled = new PooledBuffer(sc, allocateAligned(sc.capacity), size);
        }
        pooled.reset(size);
        return pooled;
    }

    /** A read-only view of {@code length} zero bytes (at most 1 MiB), aligned like pooled buffers. */
    public static ByteBuffer zeroes(int length) {
        if (length > ZERO_BUFFER_SIZE) {
            throw new IllegalArgumentException("at most " + ZERO_BUFFER_SIZE + " zero bytes at a time");
        }
        return ZEROES.duplicate().limit(length);
    }

    /**
     * A direct buffer of capacity and limit exactly {@code size}, whose first byte is aligned to
     * {@link #ALIGNMENT}. The allocation covers the size rounded up to the alignment plus one
     * alignment of slack, so the aligned slice always holds the whole size wherever the allocator
     * puts the block ({@code alignedSlice} also rounds the end down).
     */
    static ByteBuffer allocateAligned(int size) {
        if (size < 0 || size > Integer.MAX_VALUE - 2 * ALIGNMENT) {
            throw new IllegalArgumentException("cannot allocate an aligned buffer of " + size + " bytes");
        }
        int rounded = (size + ALIGNMENT - 1) & -ALIGNMENT;
        ByteBuffer aligned = ByteBuffer.allocateDirect(rounded + ALIGNMENT).alignedSlice(ALIGNMENT);
        return aligned.slice(0, size);
    }

    static final class SizeClass {
        final int capacity;
        private final int maxPooled;
        private final ArrayDeque<PooledBuffer> free = new ArrayDeque<>();

        SizeClass(int capacity, int maxPooled) {
            this.capacity = capacity;
            this.maxPooled = maxPooled;
        }

        synchronized PooledBuffer poll() {
            return free.pollFirst();
        }

        synchronized void offer(PooledBuffer b) {
            if (free.size() < maxPooled) {
                free.addFirst(b);
            }
        }
    }
}
