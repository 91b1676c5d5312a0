package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.objects.ObjectRegistry;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A draining backend tells every node below it, once each, and resume tells the same nodes. */
class DrainNotifiesNodesTest {
    static final List<String> EVENTS = new CopyOnWriteArrayList<>();

    @TempDir
    Path dir;

    /** A filter that records drainBegin/drainEnd. */
    static final class Recording implements BlockDriver {
        public String name() {
            return "drain-recorder";
        }

        public DriverKind kind() {
            return DriverKind.FILTER;
        }

        public BlockNode open(NodeOpenContext ctx) throws IOException {
            return new FilterNode(ctx) {
                @Override
                protected void drainBegin() {
                    EVENTS.add("begin " + nodeName());
                }

                @Override
                protected void drainEnd() {
                    EVENTS.add("end " + nodeName());
                }
            };
        }
    }

    @Test
    void drainBeginAndEndReachEveryNodeBelowOnce() throws Exception {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new Recording());
        try (BlockGraph g = new BlockGraph(drivers, ObjectRegistry.load(), dir)) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "drain-recorder", "node-name", "low", "file", "m0"));
            g.open(opts("driver", "drain-recorder", "node-name", "top", "file", "low"));
            g.open(opts("driver", "drain-recorder", "node-name", "other", "file", "m0"));
            g.addBackend("d0", "top", true);
            g.addBackend("d1", "other", true);
            EVENTS.clear();
            try (BlockGraph.Drained ignored = g.drain(List.of(g.node("low")))) {
                assertEquals(List.of("begin top", "begin low"), EVENTS);
                // A node opened during the drain is not told of its end.
                g.open(opts("driver", "drain-recorder", "node-name", "mid", "file", "low"));
            }
            assertEquals(List.of("begin top", "begin low", "end top", "end low"), EVENTS);
        }
    }

    /**
     * Two drains of one backend around a graph change: ending the first tells the nodes it
     * told, not the ones the second drain told (which is still going on).
     */
    @Test
    void overlappingDrainsEachEndTheirOwnNodes() throws Exception {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new Recording());
        try (BlockGraph g = new BlockGraph(drivers, ObjectRegistry.load(), dir)) {
            g.open(opts("driver", "memory", "node-name", "m0"));
            g.open(opts("driver", "drain-recorder", "node-name", "top", "file", "m0"));
            g.addBackend("d0", "top", true);
            BlockGraph.Drained first = g.drain(List.of(g.node("top")));
            g.insertAbove(g.node("top"), opts("driver", "drain-recorder", "node-name", "ins", "file", "top"));
            EVENTS.clear();
            BlockGraph.Drained second = g.drain(List.of(g.node("ins")));
            assertEquals(List.of("begin ins", "begin top"), EVENTS);
            EVENTS.clear();
            first.close();
            assertEquals(List.of("end top"), EVENTS, "the first drain ends only what it began");
            EVENTS.clear();
            second.close();
            assertEquals(List.of("end ins", "end top"), EVENTS);
            first.close();
            assertEquals(List.of("end ins", "end top"), EVENTS, "closing a drain twice ends it once");
        }
    }
}
