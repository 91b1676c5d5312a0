package io.diskstack.formats.dedup;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Physical blocks the allocator must pass over although their refcount is 0: those held by a
 * write in flight (a new block being written, or a stored one a write is about to share), and
 * those freed but not yet reusable. A freed block is reusable once the transaction that freed it
 * is on disk (before that, a crash would bring back the map entry that still points at it) and
 * no read that may have looked it up is still running ({@link ReadGuard}). Under the node's
 * metadata write lock. An overwrite frees a block per block written, so neither side boxes.
 */
final class FreedBlocks {
    private final BlockHolds holds = new BlockHolds();
    /** Freed blocks not reusable yet (count 1 each), for {@link #busy}. */
    private final BlockHolds freedSet = new BlockHolds();
    /** The same blocks in the order freed, with the transaction that freed them and the read epoch then. */
    private long[] block = new long[1024];
    private long[] txnOf = new long[1024];
    private long[] epochOf = new long[1024];
    private int count;
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
        if (count == block.length) {
            block = Arrays.copyOf(block, count * 2);
            txnOf = Arrays.copyOf(txnOf, count * 2);
            epochOf = Arrays.copyOf(epochOf, count * 2);
        }
        block[count] = p;
        txnOf[count] = openTxn;
        epochOf[count] = epoch;
        count++;
        freedSet.add(p);
    }

    /** A freed block is in use again (a write that held it shares it after all). Rare: a scan. */
    void unfreed(long p) {
        if (freedSet.get(p) == 0) {
            return;
        }
        freedSet.remove(p);
        int kept = 0;
        for (int i = 0; i < count; i++) {
            if (block[i] != p) {
                block[kept] = block[i];
                txnOf[kept] = txnOf[i];
                epochOf[kept] = epochOf[i];
                kept++;
            }
        }
        count = kept;
    }

    boolean busy(long p) {
        return holds.get(p) != 0 || (count > 0 && freedSet.get(p) != 0);
    }

    /** The next commit takes the open transaction; returns its number. */
    long captureTxn() {
        return openTxn++;
    }

    void durable(long txn) {
        durableTxn = Math.max(durableTxn, txn);
    }

    /**
     * Freed blocks that may be reused now, in block order, taken off the list; they stay busy
     * until {@link #released}, so that the caller can punch them out of the data child first.
     */
    List<Long> reusable(long epochNow) {
        List<Long> out = new ArrayList<>();
        int kept = 0;
        for (int i = 0; i < count; i++) {
            if (txnOf[i] <= durableTxn && epochNow >= epochOf[i] + 2 && holds.get(block[i]) == 0) {
                out.add(block[i]);
            } else {
                block[kept] = block[i];
                txnOf[kept] = txnOf[i];
                epochOf[kept] = epochOf[i];
                kept++;
            }
        }
        count = kept;
        out.sort(null);
        return out;
    }

    void released(List<Long> blocks) {
        for (long p : blocks) {
            freedSet.remove(p);
        }
    }

    int freedCount() {
        return count;
    }
}
