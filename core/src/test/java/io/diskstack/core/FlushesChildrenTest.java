package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.objects.ObjectRegistry;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The core flushes a node's children after it, unless the node says it flushes them itself. */
class FlushesChildrenTest {
    static final AtomicInteger FLUSHES = new AtomicInteger();

    @TempDir
    Path dir;

    /** A protocol node that counts its flushes. */
    static final class Counter implements BlockDriver {
        public String name() {
            return "flush-counter";
        }

        public DriverKind kind() {
            return DriverKind.PROTOCOL;
        }

        public BlockNode open(NodeOpenContext ctx) {
            return new BlockNode(ctx) {
                public long size() {
                    return 1 << 20;
                }

                protected void read(long offset, ByteBuffer dst, int flags) {
                    dst.position(dst.limit());
                }

                protected void write(long offset, ByteBuffer src, int flags) {
                    src.position(src.limit());
                }

                protected void flush() {
                    FLUSHES.incrementAndGet();
                }
            };
        }
    }

    /** A filter that flushes its child itself only when told to ({@code twice}: two times). */
    static final class SelfFlushing implements BlockDriver {
        public String name() {
            return "self-flushing";
        }

        public DriverKind kind() {
            return DriverKind.FILTER;
        }

        public BlockNode open(NodeOpenContext ctx) throws java.io.IOException {
            boolean twice = ctx.options().optBool("twice", false);
            return new FilterNode(ctx) {
                @Override
                protected boolean flushesChildren() {
                    return true;
                }

                @Override
                protected void flush() throws java.io.IOException {
                    if (twice) {
                        filtered().flush();
                        filtered().flush();
                    }
                }
            };
        }
    }

    @Test
    void childrenAreFlushedOnceByTheCoreOrOnlyByTheNode() throws Exception {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new Counter());
        drivers.register(new SelfFlushing());
        try (BlockGraph g = new BlockGraph(drivers, ObjectRegistry.load(), dir)) {
            g.open(opts("driver", "flush-counter", "node-name", "c0"));
            g.open(opts("driver", "passthrough", "node-name", "p0", "file", "c0"));
            g.open(opts("driver", "flush-counter", "node-name", "c1"));
            g.open(opts("driver", "self-flushing", "node-name", "s1", "file", "c1"));
            g.open(opts("driver", "flush-counter", "node-name", "c2"));
            g.open(opts("driver", "self-flushing", "node-name", "s2", "file", "c2", "twice", true));
            FLUSHES.set(0);
            g.addBackend("d0", "p0", true).flush();
            assertEquals(1, FLUSHES.get(), "the core flushes the child of a plain filter");
            FLUSHES.set(0);
            g.addBackend("d1", "s1", true).flush();
            assertEquals(0, FLUSHES.get(), "a node that flushes its children itself is trusted to");
            FLUSHES.set(0);
            g.addBackend("d2", "s2", true).flush();
            assertEquals(2, FLUSHES.get(), "and the core adds no flush of its own");
        }
    }
}
