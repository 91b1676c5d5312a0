package io.diskstack.filters.quorum;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.BlockStatusQuery;
import io.diskstack.core.ChildList;
import io.diskstack.core.ChildRole;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlProvider;
import io.diskstack.core.job.JobRegistry;
import io.diskstack.filters.quorum.QuorumDriver.ReadPattern;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * QEMU's quorum: several children with the same data. Requests go to every child at once;
 * a read returns the bytes most children agree on, a write succeeds when at least
 * {@code vote-threshold} children took it. Children that fail or lose a vote are counted
 * ({@link #stats()}) and logged by name and offset: failures at most once a second per child,
 * differences from the majority once per child.
 *
 * <p>Children can join, leave and be replaced while it runs (a RAID-1 rebuild): a child that
 * joins is out of sync, gets every write but no vote, until a resync ({@link ResyncJob}) has
 * copied every block from the children that agree.
 */
final class QuorumNode extends BlockNode implements ControlProvider {
    private static final Logger LOG = Logger.getLogger(QuorumNode.class.getName());

    /** The children now; replaced as a whole (drained) when one joins or leaves. */
    private volatile List<QuorumChild> members;
    private final int threshold;
    private final ReadPattern pattern;
    private final boolean rewriteCorrupted;
    private final boolean blkverify;
    private final long size;
    private final AtomicLong voteFailures = new AtomicLong();
    private final ChildFanOut fanOut;
    private final LogLimiter nodeLog = new LogLimiter(1, TimeUnit.SECONDS.toNanos(1), System::nanoTime);
    private final JobRegistry jobs;
    private final NodeOpenContext.StateRecorder stateRecorder;

    /** @param outOfSync the children an earlier mount left out of sync (the {@code out-of-sync} option) */
    QuorumNode(NodeOpenContext ctx, List<BlockChild> children, int threshold, ReadPattern pattern,
               boolean rewriteCorrupted, boolean blkverify, long size, java.util.Set<String> outOfSync) {
        super(ctx);
        List<QuorumChild> m = new ArrayList<>();
        for (BlockChild c : children) {
            m.add(new QuorumChild(c, !outOfSync.contains(c.name())));
        }
        this.members = List.copyOf(m);
        this.threshold = threshold;
        this.pattern = pattern;
        this.rewriteCorrupted = rewriteCorrupted;
        this.blkverify = blkverify;
        this.size = size;
        this.fanOut = new ChildFanOut(ctx.nodeName());
        this.jobs = ctx.jobs();
        this.stateRecorder = ctx.stateRecorder();
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
        for (QuorumChild child : members) {
            c = Math.max(c, child.edge.node().clusterSize());
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
     * children answer a read with the same version. That also makes rewrite-corrupted and the
     * resync safe: they write, inside the read, data no write can have changed since it was read.
     */
    @Override
    protected boolean serialisesOverlappingRequests() {
        return true;
    }

    // ---- reads ----

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        List<QuorumChild> m = members;
        if (pattern == ReadPattern.FIFO && !RequestFlags.has(flags, RequestFlags.SYNC_COPIES)) {
            readFirstAnswer(m, offset, dst);
            return;
        }
        List<QuorumChild> voters = voters(m);
        int n = voters.size();
        if (n < threshold) {
            voteFailures.incrementAndGet();
            throw new BlockIOException(Errno.EIO, "quorum '" + nodeName() + "': read at offset " + offset + ": "
                    + n + " children are in sync, vote-threshold is " + threshold);
        }
        int len = dst.remaining();
        ByteBuffer[] data = new ByteBuffer[n];
        PooledBuffer[] pooled = new PooledBuffer[n];
        data[0] = dst.slice(dst.position(), len);
        try {
            for (int i = 1; i < n; i++) {
                pooled[i] = BufferPool.acquire(len);
                data[i] = pooled[i].buffer();
            }
            Exception[] failures = fanOut.run(n, i -> voters.get(i).edge.read(offset, data[i]));
            for (ByteBuffer b : data) {
                b.limit(len).position(0);
            }
            ByteBuffer winner = vote(voters, "read", offset, len, data, failures);
            if (winner != data[0]) {
                data[0].put(0, winner, 0, len);
            }
            if (RequestFlags.has(flags, RequestFlags.SYNC_COPIES)) {
                syncCopies(m, offset, data[0].duplicate().position(0).limit(len));
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

    /** The children whose answers count. */
    private static List<QuorumChild> voters(List<QuorumChild> m) {
        List<QuorumChild> out = new ArrayList<>(m.size());
        for (QuorumChild c : m) {
            if (c.inSync) {
                out.add(c);
            }
        }
        return out;
    }

    /**
     * read-pattern=fifo: the first child that answers, in order. A child that lost a write since
     * the node was opened (the write failed on it but succeeded on enough others) may hold stale data
     * anywhere, so fifo never reads it again until a resync; if every child lost a write, the read
     * fails rather than return stale data. (QEMU's fifo reads them anyway.)
     */
    private void readFirstAnswer(List<QuorumChild> m, long offset, ByteBuffer dst) throws IOException {
        Exception last = null;
        for (QuorumChild c : m) {
            if (!c.votes()) {
                continue;
            }
            try {
                c.edge.read(offset, dst.duplicate());
                dst.position(dst.limit());
                return;
            } catch (IOException | RuntimeException e) {
                childFailed(c, "read", offset, dst.remaining(), e);
                last = e;
            }
        }
        if (last == null) {
            boolean behind = m.stream().anyMatch(c -> !c.inSync);
            throw new BlockIOException(Errno.EIO, "quorum '" + nodeName() + "': read at offset " + offset + " (+"
                    + dst.remaining() + "): every child lost a write since it was opened"
                    + (behind ? " or is out of sync" : "") + " (read-pattern fifo reads only children that have every "
                    + "write)");
        }
        throw new BlockIOException(BlockIOException.errnoOf(last), "quorum '" + nodeName() + "': read at offset "
                + offset + " (+" + dst.remaining() + ") failed on every child; last: " + last.getMessage(), last);
    }

    /** Counts the votes and returns the buffer holding the winning data, or throws EIO. */
    private ByteBuffer vote(List<QuorumChild> voters, String op, long offset, int len, ByteBuffer[] data,
                            Exception[] failures) throws IOException {
        boolean[] ok = answered(voters, op, false, offset, len, failures);
        if (blkverify) {
            int at = data[0].mismatch(data[1]);
            if (at >= 0) {
                voters.get(0).mismatches.incrementAndGet();
                voters.get(1).mismatches.incrementAndGet();
                String msg = "quorum '" + nodeName() + "': blkverify mismatch at offset " + (offset + at) + " in "
                        + op + " of [" + offset + ", +" + len + "): " + voters.get(0).describe() + " and "
                        + voters.get(1).describe() + " differ";
                logNode(Level.WARNING, () -> msg);
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
            QuorumChild c = voters.get(loser);
            c.mismatches.incrementAndGet();
            long at = offset + data[winner.representative()].mismatch(data[loser]);
            if (c.recordDivergence(at) && LOG.isLoggable(Level.WARNING)) {
                String name = c.edge.name();
                LOG.warning("quorum '" + nodeName() + "': " + c.describe() + " differs from the majority in " + op
                        + " at offset " + offset + " (+" + len + "), first at offset " + at + "; further differences "
                        + "are counted, not logged (stats: " + name + ".mismatches, " + name + ".divergent-ranges); "
                        + (rewriteCorrupted ? "rewrite-corrupted repairs what is read"
                        : "rewrite-corrupted or a resync of the child repairs it"));
            }
        }
        if (winner.count < threshold) {
            voteFailures.incrementAndGet();
            String msg = "quorum '" + nodeName() + "': no version of [" + offset + ", +" + len + ") has "
                    + threshold + " votes (the most is " + winner.count + ")";
            logNode(Level.WARNING, () -> msg);
            throw new BlockIOException(Errno.EIO, msg);
        }
        if (rewriteCorrupted && vote.winnerHasStrictMajority()) {
            // On a tie, or a mere plurality, nobody knows which copy is good: rewrite none.
            List<QuorumChild> targets = new ArrayList<>();
            for (int loser : losers) {
                targets.add(voters.get(loser));
            }
            rewrite(offset, len, data[winner.representative()], targets, "rewrote");
        }
        return data[winner.representative()];
    }

    /**
     * Writes the winning data over the given children. The read that found them holds its range
     * against writes (see {@link #serialisesOverlappingRequests()}), so the data is still current.
     */
    private void rewrite(long offset, int len, ByteBuffer good, List<QuorumChild> targets, String what) {
        Exception[] writeFailures = fanOut.run(targets.size(), i -> targets.get(i).edge.write(offset, good.duplicate(),
                0));
        for (int i = 0; i < targets.size(); i++) {
            QuorumChild c = targets.get(i);
            if (writeFailures[i] != null) {
                childFailed(c, "rewrite", offset, len, writeFailures[i]);
                c.lostWrites.incrementAndGet();
            } else if (what.equals("rewrote")) {
                log(c, Level.INFO, QuorumChild.LOG_REWRITE, () -> "quorum '" + nodeName() + "': rewrote "
                        + c.describe() + " at offset " + offset + " (+" + len + ") with the majority's data", null);
            }
        }
    }

    /** A resync's read: the agreed data goes to every child that is out of sync. */
    private void syncCopies(List<QuorumChild> m, long offset, ByteBuffer good) {
        List<QuorumChild> behind = new ArrayList<>();
        for (QuorumChild c : m) {
            if (!c.inSync) {
                behind.add(c);
            }
        }
        if (!behind.isEmpty()) {
            rewrite(offset, good.remaining(), good, behind, "resynced");
        }
    }

    // ---- writes ----

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        List<QuorumChild> m = members;
        int len = src.remaining();
        // Each child reads src from its own position; child 0 runs on this thread and takes src itself.
        ByteBuffer[] views = new ByteBuffer[m.size()];
        views[0] = src;
        for (int i = 1; i < views.length; i++) {
            views[i] = src.duplicate();
        }
        answered(m, "write", true, offset, len, fanOut.run(m.size(), i -> m.get(i).edge.write(offset, views[i], flags)));
        src.position(src.limit());
    }

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        List<QuorumChild> m = members;
        answered(m, "write-zeroes", true, offset, length, fanOut.run(m.size(),
                i -> m.get(i).edge.writeZeroes(offset, length, flags)));
    }

    @Override
    protected boolean flushesChildren() {
        return true;
    }

    /**
     * Flushes every child. The flush succeeds only if at least {@code vote-threshold} children in
     * sync flushed and lost no write since their previous flush: a child that failed a write (or a
     * flush) may have answered the flush yet not hold the data, so it does not count towards
     * durability. A child that lost a write that was acknowledged (it succeeded on enough others)
     * does not count until a flush has succeeded as a whole after that: it does not hold the data,
     * however many of its own flushes succeed. QEMU counts only the flushes; this is stricter,
     * never weaker.
     */
    @Override
    protected void flush() throws IOException {
        List<QuorumChild> m = members;
        int n = m.size();
        long[] lostBefore = new long[n];
        long[] ackedLostBefore = new long[n];
        for (int i = 0; i < n; i++) {
            lostBefore[i] = m.get(i).lostWrites.get() + m.get(i).failedFlushes.get();
            ackedLostBefore[i] = m.get(i).ackedLost.get();
        }
        Exception[] failures = fanOut.run(n, i -> m.get(i).edge.flush());
        int durable = 0;
        QuorumChild firstLost = null;
        Exception first = null;
        for (int i = 0; i < n; i++) {
            QuorumChild c = m.get(i);
            if (failures[i] != null) {
                childFailed(c, "flush", 0, 0, failures[i]);
                c.failedFlushes.incrementAndGet();
                first = first == null ? failures[i] : first;
                continue;
            }
            long lostAtLastFlush = c.lossesAtFlush.getAndAccumulate(lostBefore[i], Math::max);
            if (lostAtLastFlush >= lostBefore[i] && c.ackedLostAtDurable.get() >= ackedLostBefore[i]) {
                if (c.inSync) {
                    durable++;
                }
            } else if (firstLost == null) {
                firstLost = c;
            }
        }
        if (durable < threshold) {
            voteFailures.incrementAndGet();
            Errno errno = first == null ? Errno.EIO : BlockIOException.errnoOf(first);
            long inSync = m.stream().filter(c -> c.inSync).count();
            throw new BlockIOException(errno, "quorum '" + nodeName() + "': flush: " + durable + " of " + inSync
                    + (inSync < n ? " children in sync" : " children") + " flushed every write since their last flush, "
                    + "vote-threshold is " + threshold
                    + (firstLost == null ? "" : "; " + firstLost.describe() + " lost a write")
                    + (first == null ? "" : "; first error: " + first.getMessage()), first);
        }
        for (int i = 0; i < n; i++) {
            m.get(i).ackedLostAtDurable.accumulateAndGet(ackedLostBefore[i], Math::max);
        }
    }

    /**
     * Counts and logs the children that failed; returns which answered, or throws if fewer than
     * {@code vote-threshold} children in sync did.
     */
    private boolean[] answered(List<QuorumChild> m, String op, boolean writes, long offset, long len,
                               Exception[] failures) throws IOException {
        boolean[] ok = new boolean[failures.length];
        int good = 0;
        int inSync = 0;
        Exception first = null;
        for (int i = 0; i < failures.length; i++) {
            QuorumChild c = m.get(i);
            if (c.inSync) {
                inSync++;
            }
            if (failures[i] == null) {
                ok[i] = true;
                if (c.inSync) {
                    good++;
                }
            } else {
                childFailed(c, op, offset, len, failures[i]);
                if (writes) {
                    c.lostWrites.incrementAndGet();
                }
                first = first == null ? failures[i] : first;
            }
        }
        if (good < threshold) {
            voteFailures.incrementAndGet();
            throw new BlockIOException(first == null ? Errno.EIO : BlockIOException.errnoOf(first), "quorum '"
                    + nodeName() + "': " + op + (op.equals("flush") ? "" : " at offset " + offset + " (+" + len + ")")
                    + " succeeded on " + good + " of " + inSync + (inSync < failures.length ? " children in sync"
                    : " children") + ", vote-threshold is " + threshold
                    + (first == null ? "" : "; first error: " + first.getMessage()), first);
        }
        if (writes && good < failures.length) {
            for (int i = 0; i < failures.length; i++) {
                if (!ok[i]) {
                    m.get(i).stale = true;
                    m.get(i).ackedLost.incrementAndGet();
                }
            }
        }
        return ok;
    }

    private void childFailed(QuorumChild c, String op, long offset, long len, Exception e) {
        c.errors.incrementAndGet();
        String where = op.equals("flush") ? "" : " at offset " + offset + " (+" + len + ")";
        // An I/O error is the child's; anything else is a bug below, worth its stack trace.
        boolean bug = e instanceof RuntimeException;
        log(c, bug ? Level.SEVERE : Level.WARNING, QuorumChild.LOG_ERROR, () -> "quorum '" + nodeName() + "': "
                + c.describe() + " failed " + op + where + ": " + e.getMessage(), bug ? e : null);
    }

    /** Logs the line unless a line of that kind for that child was logged less than a second ago. */
    private static void log(QuorumChild c, Level level, int kind, Supplier<String> message, Throwable thrown) {
        if (!LOG.isLoggable(level)) {
            return;
        }
        String suppressed = c.admitLog(kind);
        if (suppressed != null) {
            LOG.log(level, message.get() + suppressed, thrown);
        }
    }

    private void logNode(Level level, Supplier<String> message) {
        if (LOG.isLoggable(level)) {
            String suppressed = nodeLog.admit(0);
            if (suppressed != null) {
                LOG.log(level, message.get() + suppressed);
            }
        }
    }

    // ---- status ----

    /**
     * Data unless every child in sync reads zeroes there (QEMU's quorum block status): the layer
     * above may skip zero ranges, which is safe only when all children agree they are zero. Like a
     * read, it tolerates children that fail as long as {@code vote-threshold} answer.
     */
    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        List<QuorumChild> voters = voters(members);
        int n = voters.size();
        BlockStatus[] status = new BlockStatus[n];
        Exception[] failures = new Exception[n];
        for (int i = 0; i < n; i++) {
            try {
                status[i] = BlockStatusQuery.above(voters.get(i).edge.node(), offset, length);
            } catch (IOException | RuntimeException e) {
                failures[i] = e;
            }
        }
        answered(voters, "block-status", false, offset, length, failures);
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

    // ---- children that join, leave and are replaced ----

    @Override
    public boolean keepsRuntimeState() {
        return true;
    }

    @Override
    public ChildList growableChildren() {
        return new ChildList("children", EnumSet.of(ChildRole.DATA));
    }

    /** A new child joins out of sync, and a resync starts. */
    @Override
    protected void childAdded(BlockChild edge) throws IOException {
        checkSize(edge);
        List<QuorumChild> m = new ArrayList<>(members);
        m.add(new QuorumChild(edge, false));
        members = List.copyOf(m);
        recordState();
        LOG.info(() -> "quorum '" + nodeName() + "': " + edge.name() + " ('" + edge.node().nodeName()
                + "') joined, out of sync until a resync copies the others' data");
        startResync(false);
    }

    /** A child leaves; refused if fewer children in sync than the vote-threshold would remain. */
    @Override
    protected void childRemoved(BlockChild edge) throws IOException {
        List<QuorumChild> m = new ArrayList<>(members);
        QuorumChild leaving = member(edge);
        m.remove(leaving);
        long inSync = m.stream().filter(c -> c.inSync).count();
        if (inSync < threshold) {
            throw new BlockIOException(Errno.EBUSY, "quorum '" + nodeName() + "': without " + leaving.describe()
                    + " only " + inSync + " children in sync would remain, vote-threshold is " + threshold);
        }
        members = List.copyOf(m);
        recordState();
    }

    /** A resync brings a replaced child up to date. */
    @Override
    protected boolean resyncsReplacedChild(BlockChild edge) {
        return true;
    }

    /** The child on this edge is another image now: out of sync, and a resync starts. */
    @Override
    protected void childReplaced(BlockChild edge) {
        QuorumChild c = member(edge);
        c.replaced();
        try {
            recordState();
        } catch (IOException e) {
            LOG.warning("quorum '" + nodeName() + "': cannot record that " + c.describe() + " is out of sync: "
                    + e.getMessage());
        }
        LOG.info(() -> "quorum '" + nodeName() + "': " + c.describe() + " replaced, out of sync until a resync "
                + "copies the others' data");
        try {
            checkSize(edge);
            startResync(false);
        } catch (IOException | RuntimeException e) {
            LOG.warning("quorum '" + nodeName() + "': " + c.describe() + " stays out of sync: " + e.getMessage());
        }
    }

    private void checkSize(BlockChild edge) throws BlockIOException {
        if (edge.node().size() != size) {
            throw new BlockIOException(Errno.EINVAL, "quorum '" + nodeName() + "': node '" + edge.node().nodeName()
                    + "' is " + edge.node().size() + " bytes, the quorum's children are " + size);
        }
    }

    private QuorumChild member(BlockChild edge) {
        for (QuorumChild c : members) {
            if (c.edge == edge) {
                return c;
            }
        }
        throw new IllegalStateException("quorum '" + nodeName() + "': no member for " + edge);
    }

    /**
     * Starts a resync of the children out of sync; with {@code stale}, children that lost a write
     * are put out of sync first, so that it brings them back too. Nothing to do: no job.
     */
    ResyncJob startResync(boolean stale) throws IOException {
        if (stale) {
            boolean changed = false;
            for (QuorumChild c : members) {
                if (c.stale && c.inSync) {
                    c.inSync = false;
                    c.stale = false;
                    c.resynced.set(0);
                    changed = true;
                }
            }
            if (changed) {
                recordState();
            }
        }
        if (members.stream().allMatch(c -> c.inSync)) {
            return null;
        }
        ResyncJob job = new ResyncJob(this);
        jobs.start(job);
        return job;
    }

    /** The children a resync brings up to date now. */
    List<QuorumChild> behind() {
        return members.stream().filter(c -> !c.inSync).toList();
    }

    /**
     * The children out of sync, as the {@code out-of-sync} option a remount reads (null: none), so
     * that a child a resync has not finished does not count again after a remount.
     */
    @Override
    public Map<String, Object> runtimeOptions() {
        List<String> behind = members.stream().filter(c -> !c.inSync).map(c -> c.edge.name()).toList();
        Map<String, Object> options = new LinkedHashMap<>();
        options.put("out-of-sync", behind.isEmpty() ? null : behind);
        return options;
    }

    /** Writes which children are out of sync where the next mount finds it. */
    void recordState() throws IOException {
        stateRecorder.record(this);
    }

    /** All children and what is known of them. */
    List<QuorumChild> members() {
        return members;
    }

    /** A resync's step: reads [offset, +dst) through the request path, writing it to the children behind. */
    void resyncRange(long offset, ByteBuffer dst) throws IOException {
        readThroughRequestPath(offset, dst, RequestFlags.SYNC_COPIES);
    }

    // ---- control files and counters ----

    @Override
    public Map<String, ControlFile> controlFiles() {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        files.put("children", ControlFile.readOnly(this::childrenListing));
        files.put("resync", ControlFile.command(() -> "start\n", text -> {
            if (!text.trim().equals("start")) {
                throw new BlockIOException(Errno.EINVAL, "write 'start' to resync the children out of sync or stale");
            }
            if (startResync(true) == null) {
                throw new BlockIOException(Errno.EINVAL, "every child of quorum '" + nodeName() + "' is in sync");
            }
        }));
        return files;
    }

    /** {@code children.0 img0 in-sync errors=0 mismatches=0}, one line per child. */
    private String childrenListing() {
        StringBuilder out = new StringBuilder();
        for (QuorumChild c : members) {
            String state;
            if (!c.inSync) {
                state = jobs.get(ResyncJob.idFor(nodeName())) != null
                        && !jobs.get(ResyncJob.idFor(nodeName())).status().isFinished()
                        ? "resyncing " + (size == 0 ? 100 : c.resynced.get() * 100 / size) + "%" : "out-of-sync";
            } else if (c.stale) {
                state = "stale";
            } else if (c.errors.get() > 0 && c.lostWrites.get() > 0) {
                state = "failed";
            } else {
                state = "in-sync";
            }
            out.append(c.edge.name()).append(' ').append(c.edge.node().nodeName()).append(' ').append(state)
                    .append(" errors=").append(c.errors.get()).append(" lost-writes=").append(c.lostWrites.get())
                    .append(" mismatches=").append(c.mismatches.get()).append('\n');
        }
        return out.toString();
    }

    @Override
    public Map<String, Long> stats() {
        Map<String, Long> stats = new LinkedHashMap<>();
        for (QuorumChild c : members) {
            String n = c.edge.name();
            stats.put(n + ".errors", c.errors.get());
            stats.put(n + ".mismatches", c.mismatches.get());
            stats.put(n + ".divergent-ranges", c.divergentRanges());
            stats.put(n + ".lost-writes", c.lostWrites.get());
        }
        stats.put("vote-failures", voteFailures.get());
        return stats;
    }

    @Override
    public String details() {
        long behind = members.stream().filter(c -> !c.inSync).count();
        return "vote-threshold " + threshold + " of " + members.size() + ", read-pattern "
                + pattern.name().toLowerCase(java.util.Locale.ROOT) + (rewriteCorrupted ? ", rewrite-corrupted" : "")
                + (blkverify ? ", blkverify" : "") + (behind == 0 ? "" : ", " + behind + " out of sync");
    }

    @Override
    protected void close() {
        fanOut.close();
    }
}
