package io.diskstack.formats.dedup;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Physical blocks the allocator must pass over although their refcount is 0: those held by a
 * write in flight (a new block being written, or a stored one a write is about to share), and
 * those freed but not yet reusable. A freed block is reusable once the transaction that freed it
 * is on disk (before that, a crash would bring back the map entry that still points at it) and
 * no read that may have looked it up is still running ({@link ReadGuard}). Under the node's
 * metadata write lock.
 */
final class FreedBlocks {
    private final BlockHolds holds = new BlockHolds();
    /** Block → {transaction that freed it, read epoch when freed}. */
    private final Map<Long, long[]> freed = new HashMap<>();
    /** The transaction changes go into now; the next commit takes it. */
    private long openTxn = 1;
    private long durableTxn;

    void hold(long p) {
        holds.add(p);
    }

    void release(long p) {
        holds.remove(p);
    }

    int holds(long p) {
        return holds.get(p);
    }

    void freed(long p, long epoch) {
        freed.put(p, new long[] {openTxn, epoch});
    }

    /** A freed block is in use again (a write that held it shares it after all). */
    void unfreed(long p) {
        freed.remove(p);
    }

    boolean busy(long p) {
        return holds.get(p) != 0 || (!freed.isEmpty() && freed.containsKey(p));
    }

    /** The next commit takes the open transaction; returns its number. */
    long captureTxn() {
        return openTxn++;
    }

    void durable(long txn) {
        durableTxn = Math.max(durableTxn, txn);
    }

    /**
     * Freed blocks that may be reused now; they stay busy until {@link #released}, so that the
     * caller can punch them out of the data child first.
     */
    List<Long> reusable(long epochNow) {
        List<Long> out = new ArrayList<>();
        for (Map.Entry<Long, long[]> e : freed.entrySet()) {
            long[] v = e.getValue();
            if (v[0] <= durableTxn && epochNow >= v[1] + 2 && holds.get(e.getKey()) == 0) {
                out.add(e.getKey());
            }
        }
        out.sort(null);
        return out;
    }

    void released(List<Long> blocks) {
        for (Iterator<Long> it = blocks.iterator(); it.hasNext(); ) {
            freed.remove(it.next());
        }
    }

    int freedCount() {
        return freed.size();
    }
}
