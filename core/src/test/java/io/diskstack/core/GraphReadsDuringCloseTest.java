package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.control.GraphView;
import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Background;
import io.diskstack.core.testing.RecordingDriver;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * While the graph closes (and waits for a slow request in flight), what the control files read
 * (the node and backend lists, the graph view) answers at once instead of waiting for the close (F8).
 */
class GraphReadsDuringCloseTest {
    @TempDir
    Path dir;

    @Test
    void controlReadsDoNotWaitForClose() throws Exception {
        BlockGraph g = TestGraphs.newGraph(dir);
        RecordingDriver rec = RecordingDriver.of(g);
        g.open(opts("driver", "memory", "node-name", "m0"));
        g.open(opts("driver", "recorder", "node-name", "s0", "file", "m0"));
        BlockBackend b = g.addBackend("d0", "s0", true);
        RecordingDriver.Hold held = RecordingDriver.node(g, "s0").hold("read");
        Background<Void> read = Background.start("read", () -> b.read(0, ByteBuffer.allocate(512)));
        Background<Boolean> close = null;
        try {
            held.awaitHeld();
            close = Background.call("close", g::closeAndReport);
            // The close has told the nodes below the backend it drains: it holds the graph and
            // waits for the read in flight.
            Await.until("the close to drain d0", () -> rec.events().contains("s0 drain-begin"));
            close.assertBlocked("the close must wait for the read in flight");

            Background<String> view = Background.call("view", () -> GraphView.render(g)
                    + g.nodes() + g.backends() + g.node("s0") + g.backend("d0"));
            String text = view.join(5, TimeUnit.SECONDS);
            assertTrue(text.contains("s0"), text);
        } finally {
            held.release();
            read.join();
            if (close != null) {
                assertTrue(close.join());
            }
        }
    }
}
