package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.testing.RecordingDriver;
import io.diskstack.core.testing.TestGraphs;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A draining backend tells every node below it, once each, and resume tells the same nodes. */
class DrainNotifiesNodesTest {
    @TempDir
    Path dir;

    @Test
    void drainBeginAndEndReachEveryNodeBelowOnce() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            RecordingDriver rec = RecordingDriver.of(g);
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "recorder", "node-name", "low", "file", "m0"));
            g.open(opts("driver", "recorder", "node-name", "top", "file", "low"));
            g.open(opts("driver", "recorder", "node-name", "other", "file", "m0"));
            g.addBackend("d0", "top", true);
            g.addBackend("d1", "other", true);
            rec.clear();
            try (BlockGraph.Drained ignored = g.drain(List.of(g.node("low")))) {
                assertEquals(List.of("top drain-begin", "low drain-begin"), rec.events());
                // A node opened during the drain is not told of its end.
                g.open(opts("driver", "recorder", "node-name", "mid", "file", "low"));
            }
            assertEquals(List.of("top drain-begin", "low drain-begin", "top drain-end", "low drain-end"),
                    rec.events());
        }
    }

    /**
     * Two drains of one backend around a graph change: ending the first tells the nodes it
     * told, not the ones the second drain told (which is still going on).
     */
    @Test
    void overlappingDrainsEachEndTheirOwnNodes() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            RecordingDriver rec = RecordingDriver.of(g);
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "recorder", "node-name", "top", "file", "m0"));
            g.addBackend("d0", "top", true);
            BlockGraph.Drained first = g.drain(List.of(g.node("top")));
            g.insertAbove(g.node("top"), opts("driver", "recorder", "node-name", "ins", "file", "top"));
            rec.clear();
            BlockGraph.Drained second = g.drain(List.of(g.node("ins")));
            assertEquals(List.of("ins drain-begin", "top drain-begin"), rec.events());
            rec.clear();
            first.close();
            assertEquals(List.of("top drain-end"), rec.events(), "the first drain ends only what it began");
            rec.clear();
            second.close();
            assertEquals(List.of("ins drain-end", "top drain-end"), rec.events());
            first.close();
            assertEquals(List.of("ins drain-end", "top drain-end"), rec.events(), "closing a drain twice ends it once");
        }
    }
}
