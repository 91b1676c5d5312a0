package io.diskstack.filters.throttle;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Background;
import io.diskstack.core.testing.TestGraphs;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Write-zeroes and discard count as writes of their full length, as in QEMU's throttle filter
 * (block/throttle.c charges {@code bytes} for pwrite_zeroes and pdiscard). As in QEMU, the charge
 * is made when the request goes and a request only ever waits for the bucket to stop
 * overflowing, never for its own size: a 1 GiB discard goes at once, and the requests after it
 * pay, for {@code (1 GiB - bucket) / bps} in all, not more. On a clock the test moves.
 */
class ThrottleZeroesAndDiscardTest {
    private static final long GIB = 1L << 30;
    private static final long RATE = 512L << 20;
    private static final long MS = 1_000_000L;

    @TempDir
    Path dir;
    BlockGraph graph;

    @BeforeEach
    void open() {
        graph = TestGraphs.newGraph(dir);
    }

    @AfterEach
    void close() {
        graph.close();
    }

    private final ManualClock clock = new ManualClock();

    private BlockBackend throttledFile(Object... limits) throws Exception {
        Path img = dir.resolve("big.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(4 * GIB);
        }
        ThrottleLimits l = ThrottleLimits.NONE;
        for (int i = 0; i < limits.length; i += 2) {
            l = l.with((String) limits[i], ((Number) limits[i + 1]).longValue());
        }
        graph.objects().put("tg0", clock.group("tg0", l));
        graph.open(opts("driver", "file", "node-name", "f0", "filename", img.toString()));
        graph.open(opts("driver", "throttle", "node-name", "t0", "throttle-group", "tg0", "file", "f0",
                "discard", "unmap"));
        return graph.addBackend("disk0", "t0", true);
    }

    private long waiting() {
        return graph.node("t0").stats().get("throttled-now").longValue();
    }

    /**
     * Runs {@code request} and checks that the group lets it go {@code seconds} after the present
     * time, to the millisecond: it still waits a millisecond before, and goes a millisecond after.
     */
    private void assertWaits(double seconds, Background.Task request) throws Exception {
        long due = clock.now() + (long) (seconds * 1e9);
        Background<Void> r = Background.start("request", request);
        Await.until("the request to wait", () -> r.isDone() || waiting() == 1);
        assertFalse(r.isDone(), "the request went at once; it should wait " + seconds + " s");
        clock.advanceTo(due - MS);
        clock.awaitSeen(r);
        assertEquals(1, waiting(), "the request went before its time");
        clock.advanceTo(due + MS);
        r.join();
        assertEquals(due + MS, clock.seenBy(r.thread()));
    }

    @Test
    void bigDiscardAndWriteZeroesGoAtOnceAndTheNextRequestsPayTheirBytes() throws Exception {
        BlockBackend b = throttledFile("bps-write", RATE);
        double drain = (GIB - RATE / 10.0) / RATE; // seconds the bucket needs after 1 GiB

        // The discard finds the bucket empty and goes with no time passing; so does a read,
        // which bps-write does not limit.
        b.discard(0, GIB);
        b.read(0, ByteBuffer.allocateDirect(4096));
        assertEquals(0, clock.now());

        // The next write-zeroes waits for the discard's bytes to leak, but not for its own.
        assertWaits(drain, () -> b.writeZeroes(GIB, GIB, 0));
        // It went a millisecond after the bucket was back to full: the write after it waits for
        // all of its bytes but that millisecond.
        assertWaits((double) GIB / RATE - 0.001, () -> b.write(3 * GIB, ByteBuffer.allocateDirect(4096), 0));
    }

    @Test
    void iopsSizeCountsABigDiscardAsManyOperationsLikeQemu() throws Exception {
        // 1 GiB at iops-size 64 MiB is 16 operations; at 8 iops, 15.2 of them must leak first.
        BlockBackend b = throttledFile("iops-write", 8, "iops-size", 64L << 20);
        b.discard(0, GIB);
        assertWaits((16 - 0.8) / 8, () -> b.discard(GIB, 4096));
    }
}
