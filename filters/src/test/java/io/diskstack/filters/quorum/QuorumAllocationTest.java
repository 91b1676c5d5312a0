package io.diskstack.filters.quorum;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The hot path stays lean: a 4 KiB read or write through a quorum of three allocates a few
 * hundred bytes of bookkeeping on the calling thread (the data buffers come from the pool), not
 * a buffer, list or latch per child. The same read on a memory node allocates nothing, so the
 * bound is the quorum's own.
 */
class QuorumAllocationTest {
    private static final int REQUESTS = 20_000;
    /** Bytes per request; a unanimous read allocated about 830 and a write about 630 before. */
    private static final long BOUND = 600;

    @TempDir
    Path dir;

    interface Request {
        void run(int i) throws Exception;
    }

    private static long bytesPerRequest(Request r) throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long best = Long.MAX_VALUE;
        for (int round = 0; round < 4; round++) {
            long before = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < REQUESTS; i++) {
                r.run(i);
            }
            best = Math.min(best, (mx.getCurrentThreadAllocatedBytes() - before) / REQUESTS);
        }
        return best;
    }

    @Test
    void readsAndWritesAllocateLittle() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            for (int i = 0; i < 3; i++) {
                g.open(opts("driver", "memory", "node-name", "m" + i, "size", "1M"));
            }
            g.open(opts("driver", "quorum", "node-name", "q0", "children", List.of("m0", "m1", "m2"),
                    "vote-threshold", 2L));
            BlockBackend q = g.addBackend("d0", "q0", true);
            ByteBuffer buf = ByteBuffer.allocateDirect(4096);
            long read = bytesPerRequest(i -> q.read(4096L * (i % 200), buf.clear()));
            long write = bytesPerRequest(i -> q.write(4096L * (i % 200), buf.clear(), 0));
            assertTrue(read < BOUND, read + " bytes allocated per read");
            assertTrue(write < BOUND, write + " bytes allocated per write");
        }
    }
}
