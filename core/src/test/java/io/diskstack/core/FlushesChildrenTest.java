package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.testing.RecordingDriver;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The core flushes a node's children after it, unless the node says it flushes them itself. */
class FlushesChildrenTest {
    @TempDir
    Path dir;

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
        drivers.register(new SelfFlushing());
        try (BlockGraph g = new BlockGraph(drivers, ObjectRegistry.load(), dir)) {
            RecordingDriver rec = (RecordingDriver) drivers.get("recorder", "test");
            for (String c : List.of("c0", "c1", "c2")) {
                g.open(opts("driver", "memory", "node-name", "m-" + c));
                g.open(opts("driver", "recorder", "node-name", c, "file", "m-" + c));
            }
            g.open(opts("driver", "passthrough", "node-name", "p0", "file", "c0"));
            g.open(opts("driver", "self-flushing", "node-name", "s1", "file", "c1"));
            g.open(opts("driver", "self-flushing", "node-name", "s2", "file", "c2", "twice", true));
            g.addBackend("d0", "p0", true).flush();
            assertEquals(1, rec.count("c0 flush"), "the core flushes the child of a plain filter");
            g.addBackend("d1", "s1", true).flush();
            assertEquals(0, rec.count("c1 flush"), "a node that flushes its children itself is trusted to");
            g.addBackend("d2", "s2", true).flush();
            assertEquals(2, rec.count("c2 flush"), "and the core adds no flush of its own");
        }
    }
}
