package io.diskstack.filters.quorum;

import io.diskstack.core.BlockChild;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One child of a quorum and what the quorum knows about it: its counters, whether it may hold
 * stale data, and whether it is in sync (a child that joins or replaces another gets every write
 * but no vote until a resync has copied the rest).
 */
final class QuorumChild {
    /** Log lines per kind and child: failures, rewrites. */
    static final int LOG_ERROR = 0;
    static final int LOG_REWRITE = 1;
    /** Blocks remembered where the child differs; past this, new blocks are still counted, repeats may be too. */
    private static final int MAX_TRACKED = 1 << 16;
    private static final int BLOCK_BITS = 12;

    final BlockChild edge;
    final AtomicLong errors = new AtomicLong();
    final AtomicLong mismatches = new AtomicLong();
    /** Writes that failed on it since open (it may hold stale data there). */
    final AtomicLong lostWrites = new AtomicLong();
    /** Flushes that failed on it since open. */
    final AtomicLong failedFlushes = new AtomicLong();
    /** Lost writes plus failed flushes as of the start of its last successful flush. */
    final AtomicLong lossesAtFlush = new AtomicLong();
    /** Acknowledged writes (they succeeded on enough others) that failed on it. */
    final AtomicLong ackedLost = new AtomicLong();
    /**
     * {@link #ackedLost} as of the start of the last flush that succeeded as a whole. Such a flush
     * made every write acknowledged before it durable on {@code vote-threshold} children; a child
     * that lost one since does not hold it, whatever its own flushes say.
     */
    final AtomicLong ackedLostAtDurable = new AtomicLong();
    /**
     * True once a write that succeeded (on {@code vote-threshold} others) failed on it: it may hold
     * stale data anywhere, so fifo does not read it. A write that failed as a whole does not count:
     * the caller was told the range is undefined.
     */
    volatile boolean stale;
    /** False while the child may lack data the others have: it gets writes but no vote. */
    volatile boolean inSync;
    /** Bytes a running resync has brought up to date, out of the disk's size. */
    final AtomicLong resynced = new AtomicLong();
    private final LogLimiter logLimiter = new LogLimiter(2, TimeUnit.SECONDS.toNanos(1), System::nanoTime);
    private final AtomicBoolean divergenceLogged = new AtomicBoolean();
    private final Set<Long> divergentBlocks = new HashSet<>();
    private long divergent;

    QuorumChild(BlockChild edge, boolean inSync) {
        this.edge = edge;
        this.inSync = inSync;
    }

    /** Counts for a vote: in sync and not known to hold stale data. */
    boolean votes() {
        return inSync && !stale;
    }

    /** {@code children.1 ('img1')}, for messages. */
    String describe() {
        return edge.name() + " ('" + edge.node().nodeName() + "')";
    }

    /** Null if the line must be dropped now; else the suffix saying how many were dropped. */
    String admitLog(int kind) {
        return logLimiter.admit(kind);
    }

    /** Records a difference from the majority starting at {@code offset}; true if it is the first (to log). */
    boolean recordDivergence(long offset) {
        long block = offset >>> BLOCK_BITS;
        synchronized (divergentBlocks) {
            if (divergentBlocks.size() < MAX_TRACKED ? divergentBlocks.add(block) : !divergentBlocks.contains(block)) {
                divergent++;
            }
        }
        return divergenceLogged.compareAndSet(false, true);
    }

    /** Distinct 4 KiB blocks where the child was found to differ since the node was opened. */
    long divergentRanges() {
        synchronized (divergentBlocks) {
            return divergent;
        }
    }

    /** A fresh start: the child on this edge is another image now, to be brought up to date. */
    void replaced() {
        for (AtomicLong counter : List.of(errors, mismatches, lostWrites, failedFlushes, lossesAtFlush, ackedLost,
                ackedLostAtDurable)) {
            counter.set(0);
        }
        stale = false;
        inSync = false;
        resynced.set(0);
        synchronized (divergentBlocks) {
            divergentBlocks.clear();
            divergent = 0;
        }
        divergenceLogged.set(false);
    }
}
