package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.testing.RecordingDriver;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A FUA write to a node without FUA support is followed by a flush of that node, also when it
 * is a write-zeroes, or a write that detect-zeroes turns into one (F5).
 */
class FuaEmulationTest {
    @TempDir
    Path dir;

    private RecordingDriver rec;

    /** A recorder without FUA support over memory, exported as d0. */
    private BlockGraph graph(String detectZeroes) throws IOException {
        BlockGraph g = TestGraphs.newGraph(dir);
        rec = RecordingDriver.of(g);
        g.open(opts("driver", "memory", "node-name", "m0", "align", 512));
        g.open(opts("driver", "recorder", "node-name", "rec", "file", "m0", "fua", false,
                "detect-zeroes", detectZeroes));
        g.addBackend("d0", "rec", true);
        rec.clear();
        return g;
    }

    @Test
    void fuaWriteIsFollowedByAFlush() throws Exception {
        try (BlockGraph g = graph("off")) {
            g.backend("d0").write(0, ByteBuffer.allocate(4096).put(0, (byte) 1), RequestFlags.FUA);
            assertEquals(List.of("rec write", "rec flush"), rec.events());
        }
    }

    @Test
    void fuaWriteZeroesIsFollowedByAFlush() throws Exception {
        try (BlockGraph g = graph("off")) {
            g.backend("d0").writeZeroes(0, 4096, RequestFlags.FUA);
            assertEquals(List.of("rec zeroes", "rec flush"), rec.events());
        }
    }

    @Test
    void unalignedFuaWriteZeroesIsFollowedByOneFlush() throws Exception {
        try (BlockGraph g = graph("off")) {
            g.backend("d0").writeZeroes(100, 2000, RequestFlags.FUA);
            List<String> events = rec.events();
            assertEquals("rec flush", events.get(events.size() - 1), events.toString());
            assertEquals(1, rec.count("rec flush"), events.toString());
            assertEquals(0, events.stream().filter(e -> e.endsWith("+fua")).count(), events.toString());
        }
    }

    @Test
    void detectedZeroesWithFuaAreFollowedByAFlush() throws Exception {
        for (String mode : List.of("on", "unmap")) {
            try (BlockGraph g = graph(mode)) {
                g.backend("d0").write(0, ByteBuffer.allocate(4096), RequestFlags.FUA);
                assertEquals(List.of("rec zeroes", "rec flush"), rec.events(), "detect-zeroes=" + mode);
            }
        }
    }
}
