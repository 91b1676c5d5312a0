package io.diskstack.filters.quorum;

import io.diskstack.core.BlockNode;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.job.BlockJob;
import io.diskstack.core.job.JobClock;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * A quorum's resync (a RAID-1 rebuild): every block is read through the quorum's request path
 * with {@link io.diskstack.core.RequestFlags#SYNC_COPIES}, so the children in sync vote on it
 * (a child that disagrees is never copied from) and the agreed data goes to the children out of
 * sync, serialised with the disk's own requests. When the whole disk is done, and no write failed
 * on them meanwhile, they count again.
 */
final class ResyncJob extends BlockJob {
    private static final Logger LOG = Logger.getLogger(ResyncJob.class.getName());
    private static final int CHUNK = 1 << 20;

    private final QuorumNode quorum;
    private final List<QuorumChild> behind;

    ResyncJob(QuorumNode quorum) {
        super(idFor(quorum.nodeName()), "resync", nodes(quorum), JobClock.SYSTEM, 0);
        this.quorum = quorum;
        this.behind = List.copyOf(quorum.behind());
    }

    static String idFor(String quorum) {
        return "resync-" + quorum;
    }

    private static List<BlockNode> nodes(QuorumNode quorum) {
        List<BlockNode> out = new ArrayList<>();
        out.add(quorum);
        for (QuorumChild c : quorum.members()) {
            out.add(c.edge.node());
        }
        return out;
    }

    @Override
    protected void work() throws Exception {
        long size = quorum.size();
        setTotal(size);
        long[] lostBefore = new long[behind.size()];
        for (int i = 0; i < behind.size(); i++) {
            lostBefore[i] = behind.get(i).lostWrites.get();
            behind.get(i).resynced.set(0);
        }
        try (PooledBuffer pooled = BufferPool.acquire(CHUNK)) {
            ByteBuffer buf = pooled.buffer();
            for (long pos = 0; pos < size; pos += CHUNK) {
                checkpoint();
                int n = (int) Math.min(CHUNK, size - pos);
                buf.clear().limit(n);
                quorum.resyncRange(pos, buf);
                for (QuorumChild c : behind) {
                    c.resynced.set(pos + n);
                }
                copied(n);
            }
        }
        for (int i = 0; i < behind.size(); i++) {
            QuorumChild c = behind.get(i);
            if (c.lostWrites.get() != lostBefore[i]) {
                throw new IOException(c.describe() + " failed a write during the resync: it stays out of sync (write "
                        + "'start' to " + "nodes/" + quorum.nodeName() + "/resync to try again)");
            }
        }
        for (QuorumChild c : behind) {
            c.stale = false;
            c.inSync = true;
            LOG.info(() -> "quorum '" + quorum.nodeName() + "': " + c.describe() + " is in sync again");
        }
        quorum.recordState();
    }

    @Override
    protected void undo() {
        // the children stay out of sync: nothing to give back
    }
}
