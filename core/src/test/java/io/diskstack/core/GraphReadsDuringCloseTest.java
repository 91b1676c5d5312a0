package io.diskstack.core;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.control.GraphView;
import io.diskstack.core.objects.ObjectRegistry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * While the graph closes (and waits for a slow request in flight), what the control files read
 * (the node and backend lists, the graph view) answers at once instead of waiting for the close (F8).
 */
class GraphReadsDuringCloseTest {
    static final CountDownLatch ENTERED = new CountDownLatch(1);
    static final CountDownLatch RELEASE = new CountDownLatch(1);

    @TempDir
    Path dir;

    /** A filter whose reads wait until the test lets them go. */
    static final class Stuck implements BlockDriver {
        public String name() {
            return "stuck";
        }

        public DriverKind kind() {
            return DriverKind.FILTER;
        }

        public BlockNode open(NodeOpenContext ctx) throws IOException {
            return new FilterNode(ctx) {
                @Override
                protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
                    ENTERED.countDown();
                    try {
                        RELEASE.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    super.read(offset, dst, flags);
                }
            };
        }
    }

    @Test
    void controlReadsDoNotWaitForClose() throws Exception {
        DriverRegistry drivers = DriverRegistry.load();
        drivers.register(new Stuck());
        BlockGraph g = new BlockGraph(drivers, ObjectRegistry.load(), dir);
        g.open(opts("driver", "memory", "node-name", "m0"));
        g.open(opts("driver", "stuck", "node-name", "s0", "file", "m0"));
        BlockBackend b = g.addBackend("d0", "s0", true);
        CompletableFuture<Void> read = CompletableFuture.runAsync(() -> {
            try {
                b.read(0, ByteBuffer.allocate(512));
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        CompletableFuture<Boolean> close = null;
        try {
            assertTrue(ENTERED.await(10, TimeUnit.SECONDS));
            close = CompletableFuture.supplyAsync(g::closeAndReport);
            Thread.sleep(300); // the close is now waiting for the read in flight

            CompletableFuture<String> view = CompletableFuture.supplyAsync(() -> GraphView.render(g)
                    + g.nodes() + g.backends() + g.node("s0") + g.backend("d0"));
            String text = view.get(5, TimeUnit.SECONDS);
            assertTrue(text.contains("s0"), text);
        } finally {
            RELEASE.countDown();
            read.get(10, TimeUnit.SECONDS);
            if (close != null) {
                assertTrue(close.get(10, TimeUnit.SECONDS));
            }
        }
    }
}
