package io.diskstack.filters.throttle;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Background;
import io.diskstack.core.testing.TestGraphs;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Throttle nodes and groups on a clock the test moves ({@link ManualClock}): nothing here
 * depends on how fast the machine is. Real time is the mount tests' business (ThrottleMountTest).
 */
class ThrottleGroupTest {
    private static final long MS = 1_000_000L;

    @TempDir
    Path dir;
    BlockGraph graph;
    final ManualClock clock = new ManualClock();

    @BeforeEach
    void open() {
        graph = TestGraphs.newGraph(dir);
    }

    @AfterEach
    void close() {
        graph.close();
    }

    private ThrottleGroup group(String id, Object... limits) {
        ThrottleLimits l = ThrottleLimits.NONE;
        for (int i = 0; i < limits.length; i += 2) {
            l = l.with((String) limits[i], ((Number) limits[i + 1]).longValue());
        }
        assertNull(l.problem(k -> k));
        ThrottleGroup g = clock.group(id, l);
        graph.objects().put(id, g);
        return g;
    }

    private BlockBackend throttled(String name, String group) throws Exception {
        graph.open(opts("driver", "memory", "node-name", "m-" + name, "size", "64M"));
        graph.open(opts("driver", "throttle", "node-name", name, "throttle-group", group, "file", "m-" + name));
        return graph.addBackend("disk-" + name, name, true);
    }

    /** Requests of the node waiting for the limits now. */
    private long waiting(String node) {
        return graph.node(node).stats().get("throttled-now").longValue();
    }

    /** Writes {@code bytes} in blocks, back to back, on a thread of its own; counts the bytes written. */
    private static Background<Void> writer(BlockBackend b, long bytes, int block, AtomicLong written) {
        return Background.start("writer", () -> {
            ByteBuffer buf = ByteBuffer.allocateDirect(block);
            for (long done = 0; done < bytes; done += block) {
                buf.clear();
                b.write(done % (b.size() - block), buf, 0);
                written.addAndGet(block);
            }
        });
    }

    /**
     * Moves the clock in steps of 10 ms until the writer is done. At every step, once the writer
     * has seen the time and waits again, the bytes let through are {@code rate × t + bucket}
     * (a request goes while the bucket is not over-full) plus at most the request that filled it.
     */
    private void stepAndCheck(Background<Void> w, AtomicLong written, long rate, double bucket, int block) {
        while (true) {
            Await.until("the writer to wait again at " + clock.now(), () -> w.isDone()
                    || clock.seenBy(w.thread()) == clock.now() && waiting("t0") == 1);
            if (w.isDone()) {
                return;
            }
            double allowed = rate * (clock.now() / 1e9) + bucket;
            long got = written.get();
            assertTrue(got >= allowed - 1 && got <= allowed + block + 1,
                    "at " + clock.now() / MS + " ms: " + got + " bytes went, the buckets allow " + allowed
                            + " and one request more");
            clock.advance(10 * MS);
        }
    }

    @Test
    void writesGoAtTheRateOfTheGroupsClock() throws Exception {
        long rate = 2 << 20;
        int block = 64 << 10;
        long bytes = 5L << 20;
        group("tg0", "bps-total", rate);
        BlockBackend b = throttled("t0", "tg0");
        AtomicLong written = new AtomicLong();
        Background<Void> w = writer(b, bytes, block, written);
        // The bucket holds a tenth of a second of the rate.
        stepAndCheck(w, written, rate, rate / 10.0, block);
        w.join();
        assertEquals(bytes, written.get());
        // The last request went once all but the bucket and itself had leaked.
        double expected = (bytes - rate / 10.0 - block) / rate;
        double last = clock.seenBy(w.thread()) / 1e9;
        assertTrue(last >= expected && last < expected + 0.01, "the last write went at " + last + " s, expected "
                + expected + " s");
    }

    @Test
    void aBurstGoesAtOnceThenTheRate() throws Exception {
        long rate = 1 << 20;
        long max = 4 << 20;
        int block = 64 << 10;
        group("tg0", "bps-total", rate, "bps-total-max", max);
        BlockBackend b = throttled("t0", "tg0");
        AtomicLong written = new AtomicLong();
        Background<Void> w = writer(b, 6L << 20, block, written);
        Await.until("the burst to fill the bucket", () -> w.isDone() || waiting("t0") == 1);
        assertEquals(0, clock.now());
        assertTrue(written.get() >= max && written.get() <= max + block, "the burst at once: " + written);
        // A burst bucket of bps-total-max for one second (bps-total-max-length 1).
        stepAndCheck(w, written, rate, max, block);
        w.join();
        double last = clock.seenBy(w.thread()) / 1e9;
        assertTrue(last >= 1.9 && last < 2.0, "the 2 MiB after the burst took " + last + " s at 1 MiB/s");
    }

    /**
     * Four threads on one member, one on the other: when requests wait, the members take turns,
     * one request each (QEMU's round robin), so the quiet member gets half of the budget.
     */
    @Test
    void membersTakeTurnsOneRequestEach() throws Exception {
        ThrottleGroup g = group("tg0", "iops-total", 200L);
        BlockBackend busy = throttled("busy", "tg0");
        BlockBackend quiet = throttled("quiet", "tg0");
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong busyOps = new AtomicLong();
        AtomicLong quietOps = new AtomicLong();
        List<Background<Void>> readers = new ArrayList<>();
        for (int t = 0; t < 5; t++) {
            BlockBackend b = t < 4 ? busy : quiet;
            AtomicLong count = t < 4 ? busyOps : quietOps;
            readers.add(Background.start("reader-" + t, () -> {
                ByteBuffer buf = ByteBuffer.allocate(512);
                while (!stop.get()) {
                    buf.clear();
                    b.read(0, buf);
                    count.incrementAndGet();
                }
            }));
        }
        // 200 operations a second with a bucket of 20: 21 go at once, then one every 5 ms.
        long expected = 21;
        StringBuilder turns = new StringBuilder();
        for (int step = 0; step <= 200; step++) {
            long quietBefore = quietOps.get();
            if (step > 0) {
                clock.advance(5 * MS);
                expected++;
            }
            long want = expected;
            Await.until(want + " operations, then all five readers waiting", () ->
                    busyOps.get() + quietOps.get() >= want && waiting("busy") + waiting("quiet") == 5);
            assertEquals(expected, busyOps.get() + quietOps.get(), "at " + clock.now() / MS + " ms");
            if (step > 0) {
                turns.append(quietOps.get() > quietBefore ? 'q' : 'b');
            }
        }
        assertFalse(turns.indexOf("qq") >= 0 || turns.indexOf("bb") >= 0, "the members alternate: " + turns);
        stop.set(true);
        g.set("iops-total", "0");
        for (Background<Void> r : readers) {
            r.join();
        }
    }

    @Test
    void controlFilesShowAndChangeLimitsAtOnce() throws Exception {
        ThrottleGroup g = group("tg0", "bps-total", 1000L);
        BlockBackend b = throttled("t0", "tg0");
        Map<String, ControlFile> files = g.controlFiles();
        assertEquals(ThrottleLimits.KEYS.size() + 1, files.size());
        assertEquals("1000\n", files.get("bps-total").read());
        assertEquals("t0\n", files.get("members").read());
        // 64 KiB at 1000 B/s leaks in a minute: a writer stuck behind it is freed by a new limit,
        // with no time passing on the group's clock.
        b.write(0, ByteBuffer.allocate(65536), 0);
        Background<Void> w = Background.start("writer", () -> b.write(0, ByteBuffer.allocate(4096), 0));
        Await.until("the write to wait", () -> waiting("t0") == 1);
        assertFalse(w.isDone(), "the write waits");
        files.get("bps-total").write("100M");
        w.join();
        assertEquals(0, clock.seenBy(w.thread()), "the write went at once");
        assertEquals("104857600\n", files.get("bps-total").read());

        BlockIOException e = assertThrows(BlockIOException.class, () -> files.get("bps-total-max").write("5"));
        assertEquals(Errno.EINVAL, e.errno());
        assertEquals("throttle group 'tg0': 'bps-total-max' value 5 is lower than 'bps-total' 104857600",
                e.getMessage());
        e = assertThrows(BlockIOException.class, () -> files.get("iops-total").write("lots"));
        assertEquals("throttle group 'tg0': 'iops-total' value 'lots' is not a non-negative integer", e.getMessage());
        assertEquals("104857600\n", files.get("bps-total").read(), "a refused write changes nothing");

        files.get("bps-total").write("0");
        assertTrue(g.limits().isUnlimited());
        AtomicLong written = new AtomicLong();
        writer(b, 64 << 20, 1 << 20, written).join();
        assertEquals(0, clock.now(), "no limits: 64 MiB went with no time passing");
    }

    @Test
    void interruptedWaiterLeavesTheQueueInOrder() throws Exception {
        group("tg0", "iops-total", 10L);
        BlockBackend b = throttled("t0", "tg0");
        // A bucket of one operation: two go at once, the third waits 100 ms.
        b.read(0, ByteBuffer.allocate(1));
        b.read(0, ByteBuffer.allocate(1));
        Background<Void> victim = Background.start("victim", () -> b.read(0, ByteBuffer.allocate(1)));
        Await.until("the victim to wait", () -> waiting("t0") == 1);
        Background<Void> next = Background.start("next", () -> b.read(0, ByteBuffer.allocate(1)));
        Await.until("a second request to queue behind it", () -> waiting("t0") == 2);
        victim.thread().interrupt();
        assertThrows(InterruptedIOException.class, victim::join);
        assertEquals(1, waiting("t0"));
        assertFalse(next.isDone());
        clock.advance(100 * MS);
        next.join();
        assertEquals(100 * MS, clock.seenBy(next.thread()), "the next request went at its time");
        clock.advance(1000 * MS);
        Background.start("later", () -> b.read(0, ByteBuffer.allocate(1))).join();
    }

    /** As in QEMU, a drain lets held requests go: closing never waits for the limits. */
    @Test
    void drainLetsWaitingRequestsGo() throws Exception {
        group("tg0", "bps-total", 1000L);
        BlockBackend b = throttled("t0", "tg0");
        b.write(0, ByteBuffer.allocate(65536), 0);
        Background<Void> stuck = Background.start("stuck", () -> b.write(0, ByteBuffer.allocate(65536), 0));
        Await.until("the write to wait for the limits", () -> waiting("t0") == 1);
        Background<Void> drain = Background.start("drain", () -> {
            try (BlockGraph.Drained drained = graph.drain(List.of(graph.node("t0")))) {
                stuck.join();
            }
        });
        drain.join();
        assertEquals(0, clock.now(), "the drain did not wait for the limit");
        Background<Void> after = Background.start("after", () -> b.write(0, ByteBuffer.allocate(512), 0));
        Await.until("after the drain the limits hold again", () -> waiting("t0") == 1);
        assertFalse(after.isDone());
        graph.close();
        after.join();
        assertEquals(0, clock.now(), "closing lets it go too");
    }

    @Test
    void unknownGroupNamesNodeAndKey() throws Exception {
        group("tg0");
        graph.objects().create(opts("qom-type", "secret", "id", "s0", "data", "x"), dir);
        assertEquals("blockdev 't0' (throttle): 'throttle-group' refers to unknown object 'tg9'",
                assertThrows(ConfigException.class, () -> throttled("t0", "tg9")).getMessage());
        assertEquals("blockdev 't1' (throttle): 'throttle-group' refers to object 's0', which is not a "
                + "throttle-group", assertThrows(ConfigException.class, () -> throttled("t1", "s0")).getMessage());
        graph.open(opts("driver", "memory", "node-name", "m9"));
        assertEquals("blockdev 't2' (throttle): 'throttle-group' is required", assertThrows(ConfigException.class,
                () -> graph.open(opts("driver", "throttle", "node-name", "t2", "file", "m9"))).getMessage());
    }
}
