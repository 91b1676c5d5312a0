package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.objects.ObjectRegistry;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node that asks for {@link BlockNode#serialisesOverlappingRequests()}: overlapping writes never
 * run at once, nor a read with a write; reads still run together.
 */
class SerialisingNodeTest {
    static final AtomicInteger READERS = new AtomicInteger();
    static final AtomicInteger WRITERS = new AtomicInteger();
    static final List<String> VIOLATIONS = new CopyOnWriteArrayList<>();
    static volatile CyclicBarrier readersMeet;

    @TempDir
    Path dir;

    /** Every request covers the same bytes; it records who else is inside at the same time. */
    static final class Recorder implements BlockDriver {
        public String name() {
            return "serialising-recorder";
        }

        public DriverKind kind() {
            return DriverKind.PROTOCOL;
        }

        public BlockNode open(NodeOpenContext ctx) {
            return new BlockNode(ctx) {
                public long size() {
                    return 1 << 20;
                }

                @Override
                protected boolean serialisesOverlappingRequests() {
                    return true;
                }

                protected void read(long offset, ByteBuffer dst, int flags) throws java.io.IOException {
                    READERS.incrementAndGet();
                    try {
                        if (WRITERS.get() > 0) {
                            note("read during a write");
                        }
                        CyclicBarrier b = readersMeet;
                        if (b != null) {
                            b.await(10, TimeUnit.SECONDS);
                        }
                        pause();
                    } catch (Exception e) {
                        throw new java.io.IOException("readers did not meet: " + e, e);
                    } finally {
                        READERS.decrementAndGet();
                    }
                    dst.position(dst.limit());
                }

                protected void write(long offset, ByteBuffer src, int flags) {
                    if (WRITERS.incrementAndGet() > 1 || READERS.get() > 0) {
                        note("write with another request");
                    }
                    pause();
                    WRITERS.decrementAndGet();
                    src.position(src.limit());
                }

                @Override
                protected void writeZeroes(long offset, long length, int flags) {
                    write(offset, ByteBuffer.allocate(0), flags);
                }
            };
        }
    }

    private static void note(String violation) {
        if (VIOLATIONS.size() < 5) {
            VIOLATIONS.add(violation);
        }
    }

    /** Stays inside the driver a moment, so that a request the core failed to hold back would meet this one. */
    private static void pause() {
        try {
            Thread.sleep(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static BlockBackend open(Path dir, BlockGraph g) throws java.io.IOException {
        g.open(opts("driver", "serialising-recorder", "node-name", "s0"));
        return g.addBackend("d0", "s0", true);
    }

    private static BlockGraph graph(Path dir) throws java.io.IOException {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new Recorder());
        return new BlockGraph(drivers, ObjectRegistry.load(), dir);
    }

    @Test
    void overlappingWritesAndReadsDoNotRunAtOnce() throws Exception {
        VIOLATIONS.clear();
        readersMeet = null;
        try (BlockGraph g = graph(dir)) {
            BlockBackend b = open(dir, g);
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            for (int t = 0; t < 8; t++) {
                int id = t;
                Thread th = new Thread(() -> {
                    try {
                        start.await();
                        for (int k = 0; k < 20; k++) {
                            switch ((id + k) % 3) {
                                case 0 -> b.write(100 + id, ByteBuffer.allocate(4096), 0);
                                case 1 -> b.writeZeroes(id, 8192, 0);
                                default -> b.read(50, ByteBuffer.allocate(4096));
                            }
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                });
                threads.add(th);
                th.start();
            }
            start.countDown();
            for (Thread th : threads) {
                th.join();
            }
            assertTrue(errors.isEmpty(), errors.toString());
            assertEquals(List.of(), VIOLATIONS);
        }
    }

    @Test
    void overlappingReadsStillRunTogether() throws Exception {
        VIOLATIONS.clear();
        readersMeet = new CyclicBarrier(2);
        try (BlockGraph g = graph(dir)) {
            BlockBackend b = open(dir, g);
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            Thread other = new Thread(() -> {
                try {
                    b.read(0, ByteBuffer.allocate(4096));
                } catch (Throwable e) {
                    errors.add(e);
                }
            });
            other.start();
            b.read(100, ByteBuffer.allocate(4096));
            other.join();
            assertTrue(errors.isEmpty(), "both reads were inside the driver at once: " + errors);
        } finally {
            readersMeet = null;
        }
    }
}
