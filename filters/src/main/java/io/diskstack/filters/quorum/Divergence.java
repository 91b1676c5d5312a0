package io.diskstack.filters.quorum;

import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * Where each child was found to differ from the majority, recorded once. A child that disagrees
 * keeps disagreeing on every read of those ranges, and again after every remount, until
 * {@code rewrite-corrupted} or a resync repairs it: so only its first difference in an open is
 * logged, and the rest are counted, every read in {@code mismatches} and every distinct 4 KiB
 * block where a difference starts in {@code divergent-ranges}.
 */
final class Divergence {
    /** Blocks remembered per child; past this, new blocks are still counted, repeats may be too. */
    private static final int MAX_TRACKED = 1 << 16;
    private static final int BLOCK_BITS = 12;

    private final AtomicIntegerArray logged;
    private final Set<Long>[] blocks;
    private final long[] distinct;

    @SuppressWarnings("unchecked")
    Divergence(int children) {
        logged = new AtomicIntegerArray(children);
        blocks = new Set[children];
        distinct = new long[children];
        for (int i = 0; i < children; i++) {
            blocks[i] = new HashSet<>();
        }
    }

    /** Records that {@code child} differs from {@code offset} on; true if that is its first difference (to log). */
    boolean record(int child, long offset) {
        long block = offset >>> BLOCK_BITS;
        synchronized (blocks[child]) {
            if (blocks[child].size() < MAX_TRACKED ? blocks[child].add(block) : !blocks[child].contains(block)) {
                distinct[child]++;
            }
        }
        return logged.compareAndSet(child, 0, 1);
    }

    /** Distinct blocks where {@code child} was found to differ since the node was opened. */
    long ranges(int child) {
        synchronized (blocks[child]) {
            return distinct[child];
        }
    }
}
