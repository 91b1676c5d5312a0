package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.objects.ObjectRegistry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A FUA write to a node without FUA support is followed by a flush of that node, also when it
 * is a write-zeroes, or a write that detect-zeroes turns into one (F5).
 */
class FuaEmulationTest {
    static final List<String> EVENTS = new CopyOnWriteArrayList<>();

    @TempDir
    Path dir;

    /** A filter without FUA support that records what reaches it. */
    static final class Recording implements BlockDriver {
        public String name() {
            return "fua-recorder";
        }

        public DriverKind kind() {
            return DriverKind.FILTER;
        }

        public BlockNode open(NodeOpenContext ctx) throws IOException {
            return new FilterNode(ctx) {
                @Override
                public boolean supportsFua() {
                    return false;
                }

                @Override
                protected void write(long offset, ByteBuffer src, int flags) throws IOException {
                    EVENTS.add("write" + fua(flags));
                    super.write(offset, src, flags);
                }

                @Override
                protected void writeZeroes(long offset, long length, int flags) throws IOException {
                    EVENTS.add("zeroes" + fua(flags));
                    super.writeZeroes(offset, length, flags);
                }

                @Override
                protected void flush() throws IOException {
                    EVENTS.add("flush");
                }
            };
        }

        private static String fua(int flags) {
            return RequestFlags.has(flags, RequestFlags.FUA) ? "+fua" : "";
        }
    }

    private BlockGraph graph(String detectZeroes) throws IOException {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new Recording());
        BlockGraph g = new BlockGraph(drivers, ObjectRegistry.load(), dir);
        g.open(opts("driver", "memory", "node-name", "m0", "align", 512));
        g.open(opts("driver", "fua-recorder", "node-name", "rec", "file", "m0", "detect-zeroes", detectZeroes));
        g.addBackend("d0", "rec", true);
        EVENTS.clear();
        return g;
    }

    @Test
    void fuaWriteIsFollowedByAFlush() throws Exception {
        try (BlockGraph g = graph("off")) {
            g.backend("d0").write(0, ByteBuffer.allocate(4096).put(0, (byte) 1), RequestFlags.FUA);
            assertEquals(List.of("write", "flush"), EVENTS);
        }
    }

    @Test
    void fuaWriteZeroesIsFollowedByAFlush() throws Exception {
        try (BlockGraph g = graph("off")) {
            g.backend("d0").writeZeroes(0, 4096, RequestFlags.FUA);
            assertEquals(List.of("zeroes", "flush"), EVENTS);
        }
    }

    @Test
    void unalignedFuaWriteZeroesIsFollowedByOneFlush() throws Exception {
        try (BlockGraph g = graph("off")) {
            g.backend("d0").writeZeroes(100, 2000, RequestFlags.FUA);
            assertEquals("flush", EVENTS.get(EVENTS.size() - 1), EVENTS.toString());
            assertEquals(1, EVENTS.stream().filter(e -> e.equals("flush")).count(), EVENTS.toString());
            assertEquals(0, EVENTS.stream().filter(e -> e.endsWith("+fua")).count(), EVENTS.toString());
        }
    }

    @Test
    void detectedZeroesWithFuaAreFollowedByAFlush() throws Exception {
        for (String mode : List.of("on", "unmap")) {
            try (BlockGraph g = graph(mode)) {
                g.backend("d0").write(0, ByteBuffer.allocate(4096), RequestFlags.FUA);
                assertEquals(List.of("zeroes", "flush"), EVENTS, "detect-zeroes=" + mode);
            }
        }
    }
}
