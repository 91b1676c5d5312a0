package io.diskstack.filters.quorum;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.BlockStatusQuery;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.filters.quorum.QuorumDriver.ReadPattern;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * QEMU's quorum: several children with the same data. Requests go to every child at once;
 * a read returns the bytes most children agree on, a write succeeds when at least
 * {@code vote-threshold} children took it. Children that fail or lose a vote are counted
 * ({@link #stats()}) and logged by name and offset: failures at most once a second per child,
 * differences from the majority once per child ({@link Divergence}).
 */
final class QuorumNode extends BlockNode {
    private static final Logger LOG = Logger.getLogger(QuorumNode.class.getName());
    /** Log lines are limited per child and kind (plus one key for the node): see {@link LogLimiter}. */
    private static final int LOG_ERROR = 0;
    private static final int LOG_REWRITE = 1;
    private static final int LOG_KINDS = 2;

    private final List<BlockChild> children;
    private final int threshold;
    private final ReadPattern pattern;
    private final boolean rewriteCorrupted;
    private final boolean blkverify;
    private final long size;
    private final AtomicLongArray errors;
    private final AtomicLongArray mismatches;
    private final AtomicLong voteFailures = new AtomicLong();
    /** Per child: writes that failed on it since open (the child may hold stale data). */
    private final AtomicLongArray lostWrites;
    /**
     * Per child: 1 once a write that succeeded (on {@code vote-threshold} others) failed on it:
     * it may hold stale data, and fifo no longer reads it. A write that failed as a whole does
     * not count: the caller was told the range is undefined.
     */
    private final AtomicIntegerArray stale;
    /** Per child: flushes that failed on it since open. */
    private final AtomicLongArray failedFlushes;
    /** Per child: lost writes plus failed flushes as of the start of its last successful flush. */
    private final AtomicLongArray lossesAtFlush;
    /** Per child: acknowledged writes (they succeeded on enough others) that failed on it. */
    private final AtomicLongArray ackedLost;
    /**
     * Per child: {@link #ackedLost} as of the start of the last flush that succeeded as a whole.
     * Such a flush made every write acknowledged before it durable on {@code vote-threshold}
     * children; a child that lost one since does not hold it, whatever its own flushes say.
     */
    private final AtomicLongArray ackedLostAtDurable;
    private final ChildFanOut fanOut;
    private final LogLimiter logLimiter;
    /** Where children differ from the majority: logged once per child, counted always. */
    private final Divergence divergence;

    QuorumNode(NodeOpenContext ctx, List<BlockChild> children, int threshold, ReadPattern pattern,
               boolean rewriteCorrupted, boolean blkverify, long size) {
        super(ctx);
        this.children = List.copyOf(children);
        this.threshold = threshold;
        this.pattern = pattern;
        this.rewriteCorrupted = rewriteCorrupted;
        this.blkverify = blkverify;
        this.size = size;
        this.errors = new AtomicLongArray(children.size());
        this.mismatches = new AtomicLongArray(children.size());
        this.lostWrites = new AtomicLongArray(children.size());
        this.stale = new AtomicIntegerArray(children.size());
        this.failedFlushes = new AtomicLongArray(children.size());
        this.lossesAtFlush = new AtomicLongArray(children.size());
        this.ackedLost = new AtomicLongArray(children.size());
        this.ackedLostAtDurable = new AtomicLongArray(children.size());
        this.fanOut = new ChildFanOut(ctx.nodeName());
        this.divergence = new Divergence(children.size());
        this.logLimiter = new LogLimiter(LOG_KINDS * children.size() + 1, TimeUnit.SECONDS.toNanos(1), System::nanoTime);
    }

    @Override
    public long size() {
        return size;
    }

    /** Every child holds the same data: snapshots and jobs act on all of them at once. */
    @Override
    public Passage passage() {
        return Passage.FAN_OUT;
    }

    @Override
    public int clusterSize() {
        int c = 1;
        for (BlockChild child : children) {
            c = Math.max(c, child.node().clusterSize());
        }
        return c;
    }

    @Override
    public boolean supportsFua() {
        return true;
    }

    /**
     * Overlapping writes run one after the other, in arrival order, so every child applies them
     * in the same order (otherwise child A could end with w1 over w2 and child B with w2 over w1).
     * A read waits for overlapping writes in flight, and a write for overlapping reads, so all
     * children answer a read with the same version. That also makes rewrite-corrupted safe: it
     * writes, inside the read, data no write can have changed since it was read.
     */
    @Override
    protected boolean serialisesOverlappingRequests() {
        return true;
    }

    // ---- reads ----

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        if (pattern == ReadPattern.FIFO) {
            readFirstAnswer(offset, dst);
            return;
        }
        int n = children.size();
        int len = dst.remaining();
        ByteBuffer[] data = new ByteBuffer[n];
        PooledBuffer[] pooled = new PooledBuffer[n];
        data[0] = dst.slice(dst.position(), len);
        try {
            for (int i = 1; i < n; i++) {
                pooled[i] = BufferPool.acquire(len);
                data[i] = pooled[i].buffer();
            }
            Exception[] failures = fanOut.run(n, i -> children.get(i).read(offset, data[i]));
            for (ByteBuffer b : data) {
                b.limit(len).position(0);
            }
            ByteBuffer winner = vote("read", offset, len, data, failures);
            if (winner != data[0]) {
                data[0].put(0, winner, 0, len);
            }
        } finally {
            for (PooledBuffer p : pooled) {
                if (p != null) {
                    p.close();
                }
            }
        }
        dst.position(dst.limit());
    }

    /**
     * read-pattern=fifo: the first child that answers, in order. A child that lost a write since
     * the node was opened (the write failed on it but succeeded on enough others) may hold stale data
     * anywhere, so fifo never reads it again until the node is reopened; if every child lost a
     * write, the read fails rather than return stale data. (QEMU's fifo reads them anyway.)
     */
    private void readFirstAnswer(long offset, ByteBuffer dst) throws IOException {
        Exception last = null;
        for (int i = 0; i < children.size(); i++) {
            if (stale.get(i) != 0) {
                continue;
            }
            try {
                children.get(i).read(offset, dst.duplicate());
                dst.position(dst.limit());
                return;
            } catch (IOException | RuntimeException e) {
                childFailed(i, "read", offset, dst.remaining(), e);
                last = e;
            }
        }
        if (last == null) {
            throw new BlockIOException(Errno.EIO, "quorum '" + nodeName() + "': read at offset " + offset + " (+"
                    + dst.remaining() + "): every child lost a write since it was opened (read-pattern fifo reads "
                    + "only children that have every write)");
        }
        throw new BlockIOException(BlockIOException.errnoOf(last), "quorum '" + nodeName() + "': read at offset "
                + offset + " (+" + dst.remaining() + ") failed on every child; last: " + last.getMessage(), last);
    }

    /** Counts the votes and returns the buffer holding the winning data, or throws EIO. */
    private ByteBuffer vote(String op, long offset, int len, ByteBuffer[] data, Exception[] failures)
            throws IOException {
        boolean[] ok = answered(op, false, offset, len, failures);
        if (blkverify) {
            int at = data[0].mismatch(data[1]);
            if (at >= 0) {
                mismatches.incrementAndGet(0);
                mismatches.incrementAndGet(1);
                String msg = "quorum '" + nodeName() + "': blkverify mismatch at offset " + (offset + at) + " in "
                        + op + " of [" + offset + ", +" + len + "): " + childName(0) + " and " + childName(1)
                        + " differ";
                log(Level.WARNING, nodeLogKey(), () -> msg, null);
                throw new BlockIOException(Errno.EIO, msg);
            }
            return data[0];
        }
        int agreed = QuorumVote.unanimous(data, ok);
        if (agreed >= 0) {
            return data[agreed];
        }
        QuorumVote vote = QuorumVote.count(data, ok);
        QuorumVote.Version winner = vote.winner();
        List<Integer> losers = vote.losers();
        for (int loser : losers) {
            mismatches.incrementAndGet(loser);
            long at = offset + data[winner.representative()].mismatch(data[loser]);
            if (divergence.record(loser, at) && LOG.isLoggable(Level.WARNING)) {
                String c = children.get(loser).name();
                LOG.warning("quorum '" + nodeName() + "': " + childName(loser) + " differs from the majority in " + op
                        + " at offset " + offset + " (+" + len + "), first at offset " + at + "; further differences "
                        + "are counted, not logged (stats: " + c + ".mismatches, " + c + ".divergent-ranges); "
                        + (rewriteCorrupted ? "rewrite-corrupted repairs what is read"
                        : "rewrite-corrupted or a resync of the child repairs it"));
            }
        }
        if (winner.count < threshold) {
            voteFailures.incrementAndGet();
            String msg = "quorum '" + nodeName() + "': no version of [" + offset + ", +" + len + ") has "
                    + threshold + " votes (the most is " + winner.count + ")";
            log(Level.WARNING, nodeLogKey(), () -> msg, null);
            throw new BlockIOException(Errno.EIO, msg);
        }
        if (rewriteCorrupted && vote.winnerHasStrictMajority()) {
            // On a tie, or a mere plurality, nobody knows which copy is good: rewrite none.
            rewrite(offset, len, data[winner.representative()], losers);
        }
        return data[winner.representative()];
    }

    /**
     * Writes the winning data over the children that lost the vote. The read that found them
     * holds its range against writes (see {@link #serialisesOverlappingRequests()}), so the
     * winning data is still current.
     */
    private void rewrite(long offset, int len, ByteBuffer good, List<Integer> losers) {
        Exception[] writeFailures = fanOut.run(children.size(), i -> {
            if (losers.contains(i)) {
                children.get(i).write(offset, good.duplicate(), 0);
            }
        });
        for (int loser : losers) {
            if (writeFailures[loser] != null) {
                childFailed(loser, "rewrite", offset, len, writeFailures[loser]);
                lostWrites.incrementAndGet(loser);
            } else {
                log(Level.INFO, LOG_REWRITE * children.size() + loser, () -> "quorum '" + nodeName() + "': rewrote "
                        + childName(loser) + " at offset " + offset + " (+" + len + ") with the majority's data", null);
            }
        }
    }

    // ---- writes ----

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        int len = src.remaining();
        // Each child reads src from its own position; child 0 runs on this thread and takes src itself.
        ByteBuffer[] views = new ByteBuffer[children.size()];
        views[0] = src;
        for (int i = 1; i < views.length; i++) {
            views[i] = src.duplicate();
        }
        answered("write", true, offset, len, fanOut.run(children.size(), i -> children.get(i).write(offset, views[i],
                flags)));
        src.position(src.limit());
    }

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        answered("write-zeroes", true, offset, length, fanOut.run(children.size(),
                i -> children.get(i).writeZeroes(offset, length, flags)));
    }

    @Override
    protected boolean flushesChildren() {
        return true;
    }

    /**
     * Flushes every child. The flush succeeds only if at least {@code vote-threshold} children
     * flushed and lost no write since their previous flush: a child that failed a write (or a
     * flush) may have answered the flush yet not hold the data, so it does not count towards
     * durability. A child that lost a write that was acknowledged (it succeeded on enough others)
     * does not count until a flush has succeeded as a whole after that: it does not hold the data,
     * however many of its own flushes succeed. QEMU counts only the flushes; this is stricter,
     * never weaker.
     */
    @Override
    protected void flush() throws IOException {
        int n = children.size();
        long[] lostBefore = new long[n];
        long[] ackedLostBefore = new long[n];
        for (int i = 0; i < n; i++) {
            lostBefore[i] = lostWrites.get(i) + failedFlushes.get(i);
            ackedLostBefore[i] = ackedLost.get(i);
        }
        Exception[] failures = fanOut.run(n, i -> children.get(i).flush());
        int durable = 0;
        int firstLost = -1;
        Exception first = null;
        for (int i = 0; i < n; i++) {
            if (failures[i] != null) {
                childFailed(i, "flush", 0, 0, failures[i]);
                failedFlushes.incrementAndGet(i);
                first = first == null ? failures[i] : first;
                continue;
            }
            long lostAtLastFlush = lossesAtFlush.getAndAccumulate(i, lostBefore[i], Math::max);
            if (lostAtLastFlush >= lostBefore[i] && ackedLostAtDurable.get(i) >= ackedLostBefore[i]) {
                durable++;
            } else if (firstLost < 0) {
                firstLost = i;
            }
        }
        if (durable < threshold) {
            voteFailures.incrementAndGet();
            Errno errno = first == null ? Errno.EIO : BlockIOException.errnoOf(first);
            throw new BlockIOException(errno, "quorum '" + nodeName() + "': flush: " + durable + " of " + n
                    + " children flushed every write since their last flush, vote-threshold is " + threshold
                    + (firstLost < 0 ? "" : "; " + childName(firstLost) + " lost a write")
                    + (first == null ? "" : "; first error: " + first.getMessage()), first);
        }
        for (int i = 0; i < n; i++) {
            ackedLostAtDurable.accumulateAndGet(i, ackedLostBefore[i], Math::max);
        }
    }

    /**
     * Counts and logs the children that failed; returns which answered, or throws if fewer
     * than {@code vote-threshold} did.
     */
    private boolean[] answered(String op, boolean writes, long offset, long len, Exception[] failures)
            throws IOException {
        boolean[] ok = new boolean[failures.length];
        int good = 0;
        Exception first = null;
        for (int i = 0; i < failures.length; i++) {
            if (failures[i] == null) {
                ok[i] = true;
                good++;
            } else {
                childFailed(i, op, offset, len, failures[i]);
                if (writes) {
                    lostWrites.incrementAndGet(i);
                }
                first = first == null ? failures[i] : first;
            }
        }
        if (good < threshold) {
            voteFailures.incrementAndGet();
            throw new BlockIOException(BlockIOException.errnoOf(first), "quorum '" + nodeName() + "': " + op
                    + (op.equals("flush") ? "" : " at offset " + offset + " (+" + len + ")") + " succeeded on "
                    + good + " of " + failures.length + " children, vote-threshold is " + threshold + "; first error: "
                    + first.getMessage(), first);
        }
        if (writes && good < failures.length) {
            for (int i = 0; i < failures.length; i++) {
                if (!ok[i]) {
                    stale.set(i, 1);
                    ackedLost.incrementAndGet(i);
                }
            }
        }
        return ok;
    }

    private void childFailed(int i, String op, long offset, long len, Exception e) {
        errors.incrementAndGet(i);
        String where = op.equals("flush") ? "" : " at offset " + offset + " (+" + len + ")";
        // An I/O error is the child's; anything else is a bug below, worth its stack trace.
        boolean bug = e instanceof RuntimeException;
        log(bug ? Level.SEVERE : Level.WARNING, LOG_ERROR * children.size() + i, () -> "quorum '" + nodeName()
                + "': " + childName(i) + " failed " + op + where + ": " + e.getMessage(), bug ? e : null);
    }

    /** Logs the line unless a line with the same key was logged less than a second ago. */
    private void log(Level level, int key, Supplier<String> message, Throwable thrown) {
        if (!LOG.isLoggable(level)) {
            return;
        }
        String suppressed = logLimiter.admit(key);
        if (suppressed != null) {
            LOG.log(level, message.get() + suppressed, thrown);
        }
    }

    private int nodeLogKey() {
        return LOG_KINDS * children.size();
    }

    // ---- status ----

    /**
     * Data unless every child reads zeroes there (QEMU's quorum block status): the layer above
     * may skip zero ranges, which is safe only when all children agree they are zero. Like a
     * read, it tolerates children that fail as long as {@code vote-threshold} answer; the
     * answers of those count.
     */
    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        int n = children.size();
        BlockStatus[] status = new BlockStatus[n];
        Exception[] failures = new Exception[n];
        for (int i = 0; i < n; i++) {
            try {
                status[i] = BlockStatusQuery.above(children.get(i).node(), offset, length);
            } catch (IOException | RuntimeException e) {
                failures[i] = e;
            }
        }
        answered("block-status", false, offset, length, failures);
        long zero = length;
        long data = 0;
        for (BlockStatus s : status) {
            if (s == null) {
                continue;
            }
            if (s.isZero()) {
                zero = Math.min(zero, s.length());
            } else {
                data = Math.max(data, s.length());
            }
        }
        if (data > 0) {
            return BlockStatus.of(data, BlockStatus.DATA | BlockStatus.ALLOCATED);
        }
        return BlockStatus.of(zero, BlockStatus.ZERO | BlockStatus.ALLOCATED);
    }

    @Override
    public Map<String, Long> stats() {
        Map<String, Long> stats = new LinkedHashMap<>();
        for (int i = 0; i < children.size(); i++) {
            stats.put(children.get(i).name() + ".errors", errors.get(i));
            stats.put(children.get(i).name() + ".mismatches", mismatches.get(i));
            stats.put(children.get(i).name() + ".divergent-ranges", divergence.ranges(i));
            stats.put(children.get(i).name() + ".lost-writes", lostWrites.get(i));
        }
        stats.put("vote-failures", voteFailures.get());
        return stats;
    }

    @Override
    public String details() {
        return "vote-threshold " + threshold + " of " + children.size() + ", read-pattern "
                + pattern.name().toLowerCase(java.util.Locale.ROOT) + (rewriteCorrupted ? ", rewrite-corrupted" : "")
                + (blkverify ? ", blkverify" : "");
    }

    @Override
    protected void close() {
        fanOut.close();
    }

    private String childName(int i) {
        BlockChild c = children.get(i);
        return c.name() + " ('" + c.node().nodeName() + "')";
    }
}
