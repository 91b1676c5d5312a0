package io.diskstack.filters.throttle;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Write-zeroes and discard count as writes of their full length, as in QEMU's throttle filter
 * (block/throttle.c charges {@code bytes} for pwrite_zeroes and pdiscard). As in QEMU, the charge
 * is made when the request goes and a request only ever waits for the bucket to stop
 * overflowing, never for its own size: a 1 GiB discard goes at once, and the requests after it
 * pay, for {@code (1 GiB - bucket) / bps} in all, not more.
 */
class ThrottleZeroesAndDiscardTest {
    private static final long GIB = 1L << 30;
    private static final long RATE = 512L << 20;

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

    private BlockBackend throttledFile(String... limits) throws Exception {
        Path img = dir.resolve("big.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(4 * GIB);
        }
        Map<String, Object> o = new LinkedHashMap<>(opts((Object[]) limits));
        o.put("qom-type", "throttle-group");
        o.put("id", "tg0");
        graph.objects().create(o, dir);
        graph.open(opts("driver", "file", "node-name", "f0", "filename", img.toString()));
        graph.open(opts("driver", "throttle", "node-name", "t0", "throttle-group", "tg0", "file", "f0",
                "discard", "unmap"));
        return graph.addBackend("disk0", "t0", true);
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    @Test
    void bigDiscardAndWriteZeroesGoAtOnceAndTheNextRequestsPayTheirBytes() throws Exception {
        BlockBackend b = throttledFile("limits.bps-write", String.valueOf(RATE));
        double drain = (GIB - RATE / 10.0) / RATE; // seconds the bucket needs after 1 GiB

        long t0 = System.nanoTime();
        b.discard(0, GIB);
        assertTrue(seconds(t0) < 0.5, "the discard found the bucket empty and went at once: " + seconds(t0));

        // Reads are not limited by bps-write: the discard did not hold them back.
        t0 = System.nanoTime();
        b.read(0, ByteBuffer.allocateDirect(4096));
        assertTrue(seconds(t0) < 0.5, "read waited " + seconds(t0));

        // The next write-zeroes waits for the discard's bytes to leak, but not for its own.
        t0 = System.nanoTime();
        b.writeZeroes(GIB, GIB, 0);
        double zeroWait = seconds(t0);
        assertTrue(zeroWait > drain * 0.8 && zeroWait < drain * 1.3,
                "write-zeroes waited " + zeroWait + " s, QEMU's buckets say " + drain + " s");

        // And the write after it waits for the write-zeroes' bytes.
        t0 = System.nanoTime();
        b.write(3 * GIB, ByteBuffer.allocateDirect(4096), 0);
        double writeWait = seconds(t0);
        assertTrue(writeWait > drain * 0.8 && writeWait < drain * 1.3,
                "write waited " + writeWait + " s, QEMU's buckets say " + drain + " s");
    }

    @Test
    void iopsSizeCountsABigDiscardAsManyOperationsLikeQemu() throws Exception {
        // 1 GiB at iops-size 64 MiB is 16 operations; at 8 iops, 15.2 of them must leak first.
        BlockBackend b = throttledFile("limits.iops-write", "8", "limits.iops-size", String.valueOf(64L << 20));
        long t0 = System.nanoTime();
        b.discard(0, GIB);
        assertTrue(seconds(t0) < 0.5, "discard waited " + seconds(t0));
        double expected = (16 - 0.8) / 8;
        t0 = System.nanoTime();
        b.discard(GIB, 4096);
        double wait = seconds(t0);
        assertTrue(wait > expected * 0.8 && wait < expected * 1.3, "waited " + wait + " s, expected " + expected);
    }
}
