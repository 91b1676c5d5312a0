package io.diskstack.core.snapshot;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.Errno;
import io.diskstack.core.ReadOnlyView;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Open views are shared, kept for the linger time after their last reader, then closed. */
class ViewCacheTest {
    @TempDir
    Path dir;
    private BlockGraph graph;
    private final List<Runnable> scheduled = new ArrayList<>();
    private final AtomicInteger cancelled = new AtomicInteger();
    private final AtomicInteger opened = new AtomicInteger();
    private ViewCache cache;

    @BeforeEach
    void setUp() throws IOException {
        graph = TestGraphs.newGraph(dir);
        graph.open(opts("driver", "memory", "node-name", "m0"));
        cache = new ViewCache(task -> {
            scheduled.add(task);
            return cancelled::incrementAndGet;
        }, () -> {});
    }

    @AfterEach
    void tearDown() {
        cache.close();
        graph.close();
    }

    /** A view of m0 read through the live node, counting opens. */
    private ReadOnlyView openView() throws IOException {
        opened.incrementAndGet();
        BlockNode m0 = graph.node("m0");
        return ReadOnlyView.open(graph, m0, Map.of(m0, ReadOnlyView.liveNode(graph, m0, true, "view")), "view");
    }

    private boolean held() {
        return !graph.node("m0").parents().isEmpty();
    }

    @Test
    void readersShareOneViewWhichLingersThenCloses() throws Exception {
        ViewCache.Lease a = cache.acquire("k", this::openView);
        ViewCache.Lease b = cache.acquire("k", this::openView);
        assertEquals(1, opened.get());
        a.close();
        assertTrue(scheduled.isEmpty(), "still in use");
        b.close();
        assertEquals(1, scheduled.size(), "idle: closes after the linger time");
        assertTrue(held());

        // opened again within the linger time: the same view, the close cancelled
        ViewCache.Lease c = cache.acquire("k", this::openView);
        assertEquals(1, opened.get());
        assertEquals(1, cancelled.get());
        c.close();
        assertEquals(2, scheduled.size());
        scheduled.get(1).run();
        assertEquals(0, cache.openViews());
        assertTrue(!held(), "the view closed and let go of the node");

        // a stale task from before changes nothing; a new reader opens a new view
        scheduled.get(0).run();
        try (ViewCache.Lease d = cache.acquire("k", this::openView)) {
            assertEquals(2, opened.get());
            assertEquals(graph.node("m0").size(), d.size());
        }
    }

    @Test
    void differentKeysAreDifferentViewsAndAFailedOpenLeavesNothing() throws Exception {
        try (ViewCache.Lease a = cache.acquire("k1", this::openView);
             ViewCache.Lease b = cache.acquire("k2", this::openView)) {
            assertEquals(2, opened.get());
            assertEquals(2, cache.openViews());
        }
        BlockIOException e = assertThrows(BlockIOException.class, () -> cache.acquire("bad", () -> {
            throw new BlockIOException(Errno.ENOENT, "gone");
        }));
        assertEquals("gone", e.getMessage());
        assertEquals(2, scheduled.size(), "nothing lingers for a view that never opened");
        cache.close();
        assertEquals(0, cache.openViews());
        assertTrue(!held(), "closing the cache closes lingering views");
    }
}
