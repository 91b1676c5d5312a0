package io.diskstack.core.buffer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BufferPoolTest {
    private static List<Integer> sizesAroundBoundaries() {
        List<Integer> sizes = new ArrayList<>();
        sizes.add(0);
        for (int shift = 0; shift <= 24; shift++) {
            int base = 1 << shift;
            for (int delta : new int[] {-4097, -4096, -4095, -17, -16, -1, 0, 1, 15, 16, 17, 4095, 4096, 4097}) {
                long s = (long) base + delta;
                if (s > 0 && s <= (32 << 20)) {
                    sizes.add((int) s);
                }
            }
        }
        sizes.add((4 << 20) + 512);
        sizes.add((5 << 20) + 3);
        return sizes;
    }

    private static void assertUsable(ByteBuffer b, int size) {
        assertEquals(0, b.position(), "position for " + size);
        assertEquals(size, b.limit(), "limit for " + size);
        assertTrue(b.capacity() >= size, "capacity " + b.capacity() + " < " + size);
        assertTrue(b.isDirect());
        if (size > 0) {
            assertEquals(0, b.alignmentOffset(0, BufferPool.ALIGNMENT), "alignment for " + size);
        }
        // every requested byte can be written and read back
        for (int i = 0; i < size; i += 511) {
            b.put(i, (byte) (i * 31 + 7));
        }
        if (size > 0) {
            b.put(size - 1, (byte) 0x5a);
        }
        for (int i = 0; i < size - 1; i += 511) {
            assertEquals((byte) (i * 31 + 7), b.get(i));
        }
        if (size > 0) {
            assertEquals((byte) 0x5a, b.get(size - 1));
        }
    }

    @Test
    void allocateAlignedGivesExactlyTheSizeAligned() {
        for (int size : sizesAroundBoundaries()) {
            ByteBuffer b = BufferPool.allocateAligned(size);
            assertEquals(size, b.capacity(), "capacity for " + size);
            assertUsable(b, size);
        }
    }

    @Test
    void acquireGivesAtLeastTheSizeAligned() {
        for (int size : sizesAroundBoundaries()) {
            try (PooledBuffer p = BufferPool.acquire(size)) {
                assertUsable(p.buffer(), size);
            }
            // and again, from the pool this time
            try (PooledBuffer p = BufferPool.acquire(size)) {
                assertUsable(p.buffer(), size);
            }
        }
    }
}
