package io.diskstack.filters.throttle;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.testing.TestGraphs;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Throttle nodes and groups in real time, with small limits to keep the tests short. */
class ThrottleGroupTest {
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

    private ThrottleGroup group(String id, Object... limits) {
        Map<String, Object> o = new java.util.LinkedHashMap<>(opts(limits));
        o.put("qom-type", "throttle-group");
        o.put("id", id);
        return (ThrottleGroup) graph.objects().create(o, dir);
    }

    private BlockBackend throttled(String name, String group) throws Exception {
        graph.open(opts("driver", "memory", "node-name", "m-" + name, "size", "64M"));
        graph.open(opts("driver", "throttle", "node-name", name, "throttle-group", group, "file", "m-" + name));
        return graph.addBackend("disk-" + name, name, true);
    }

    /** Writes blocks back to back until {@code bytes} are written; returns the seconds it took. */
    private static double timeWrites(BlockBackend b, long bytes, int block) throws Exception {
        ByteBuffer buf = ByteBuffer.allocateDirect(block);
        long t0 = System.nanoTime();
        for (long done = 0; done < bytes; done += block) {
            buf.clear();
            b.write(done % (b.size() - block), buf, 0);
        }
        return (System.nanoTime() - t0) / 1e9;
    }

    @Test
    void rateIsWithinFivePercent() throws Exception {
        group("tg0", "limits.bps-total", "2M");
        BlockBackend b = throttled("t0", "tg0");
        int block = 64 << 10;
        long bytes = 5L << 20;
        double seconds = timeWrites(b, bytes, block);
        // The bucket lets a tenth of a second and the request that fills it through at once.
        double expected = (bytes - (2 << 20) / 10.0 - block) / (2 << 20);
        assertTrue(Math.abs(seconds - expected) <= 0.05 * expected,
                "took " + seconds + " s, expected " + expected + " s");
    }

    @Test
    void burstGoesAtOnceThenTheRate() throws Exception {
        group("tg0", "limits.bps-total", "1M", "limits.bps-total-max", "4M");
        BlockBackend b = throttled("t0", "tg0");
        int block = 64 << 10;
        double burst = timeWrites(b, 4L << 20, block);
        assertTrue(burst < 0.3, "the 4 MiB burst took " + burst + " s");
        double steady = timeWrites(b, 2L << 20, block);
        assertTrue(Math.abs(steady - 2.0) <= 0.1, "then 2 MiB at 1 MiB/s took " + steady + " s");
    }

    @Test
    void membersShareTheBudgetRoundRobin() throws Exception {
        group("tg0", "limits.iops-total", 200L);
        BlockBackend busy = throttled("busy", "tg0");
        BlockBackend quiet = throttled("quiet", "tg0");
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong busyOps = new AtomicLong();
        AtomicLong quietOps = new AtomicLong();
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 5; t++) {
            BlockBackend b = t < 4 ? busy : quiet;
            AtomicLong count = t < 4 ? busyOps : quietOps;
            Thread th = new Thread(() -> {
                ByteBuffer buf = ByteBuffer.allocate(512);
                try {
                    while (!stop.get()) {
                        buf.clear();
                        b.read(0, buf);
                        count.incrementAndGet();
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            });
            threads.add(th);
            th.start();
        }
        Thread.sleep(2000);
        stop.set(true);
        for (Thread th : threads) {
            th.join(5000);
        }
        assertTrue(errors.isEmpty(), errors.toString());
        long total = busyOps.get() + quietOps.get();
        assertTrue(Math.abs(total - 420) <= 25, "group total " + total + " ops in 2 s at 200/s");
        double quietShare = (double) quietOps.get() / total;
        assertTrue(quietShare > 0.42 && quietShare < 0.58,
                "one thread on 'quiet' got " + quietOps + " of " + total + " ops against four on 'busy'");
    }

    @Test
    void controlFilesShowAndChangeLimitsAtOnce() throws Exception {
        ThrottleGroup g = group("tg0", "limits.bps-total", 1000L);
        BlockBackend b = throttled("t0", "tg0");
        Map<String, ControlFile> files = g.controlFiles();
        assertEquals(ThrottleLimits.KEYS.size() + 1, files.size());
        assertEquals("1000\n", files.get("bps-total").read());
        assertEquals("t0\n", files.get("members").read());
        // 64 KiB at 1000 B/s would take a minute: a writer stuck behind it is freed by a new limit.
        b.write(0, ByteBuffer.allocate(65536), 0);
        AtomicLong done = new AtomicLong(-1);
        Thread w = new Thread(() -> {
            try {
                b.write(0, ByteBuffer.allocate(4096), 0);
                done.set(System.nanoTime());
            } catch (Exception e) {
                done.set(-2);
            }
        });
        w.start();
        Thread.sleep(200);
        assertEquals(-1, done.get(), "the write waits");
        long t0 = System.nanoTime();
        files.get("bps-total").write("100M");
        w.join(2000);
        assertTrue(done.get() > 0 && done.get() - t0 < 200_000_000L, "the write went at once");
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
        double seconds = timeWrites(b, 64 << 20, 1 << 20);
        assertTrue(seconds < 2, "no limits: " + seconds);
    }

    @Test
    void interruptedWaiterLeavesTheQueueInOrder() throws Exception {
        group("tg0", "limits.iops-total", 10L);
        BlockBackend b = throttled("t0", "tg0");
        for (int i = 0; i < 3; i++) {
            b.read(0, ByteBuffer.allocate(1));
        }
        List<Throwable> outcome = new CopyOnWriteArrayList<>();
        Thread victim = new Thread(() -> {
            try {
                b.read(0, ByteBuffer.allocate(1));
                outcome.add(null);
            } catch (Throwable e) {
                outcome.add(e);
            }
        });
        victim.start();
        Thread.sleep(20);
        victim.interrupt();
        victim.join(2000);
        assertFalse(victim.isAlive());
        assertTrue(outcome.get(0) instanceof InterruptedIOException, String.valueOf(outcome));
        long t0 = System.nanoTime();
        b.read(0, ByteBuffer.allocate(1));
        assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "later requests still go");
    }

    /** As in QEMU, a drain lets held requests go: closing never waits for the limits. */
    @Test
    void drainLetsWaitingRequestsGo() throws Exception {
        group("tg0", "limits.bps-total", 1000L);
        BlockBackend b = throttled("t0", "tg0");
        b.write(0, ByteBuffer.allocate(65536), 0);
        List<Throwable> errors = new CopyOnWriteArrayList<>();
        Thread stuck = new Thread(() -> {
            try {
                b.write(0, ByteBuffer.allocate(65536), 0);
            } catch (Throwable e) {
                errors.add(e);
            }
        });
        stuck.start();
        Thread.sleep(200);
        assertTrue(stuck.isAlive(), "64 KiB at 1000 B/s waits about a minute");
        long t0 = System.nanoTime();
        try (BlockGraph.Drained drained = graph.drain(List.of(graph.node("t0")))) {
            assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "the drain did not wait for the limit");
            stuck.join(1000);
            assertFalse(stuck.isAlive());
        }
        assertTrue(errors.isEmpty(), errors.toString());
        Thread after = new Thread(() -> {
            try {
                b.write(0, ByteBuffer.allocate(512), 0);
            } catch (Throwable e) {
                errors.add(e);
            }
        });
        after.start();
        after.join(300);
        assertTrue(after.isAlive(), "after the drain the limits hold again");
        t0 = System.nanoTime();
        graph.close();
        assertTrue(System.nanoTime() - t0 < 2_000_000_000L, "closing lets it go too");
        after.join(1000);
        assertFalse(after.isAlive());
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
