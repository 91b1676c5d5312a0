package io.diskstack.filters.blkdebug;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.Background;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.filters.blkdebug.InjectionRule.Action;
import io.diskstack.filters.blkdebug.InjectionRule.IoType;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Corrupt rules corrupt only when they fire, each byte once; a once-rule fires once under races. */
class BlkdebugRulesTest {
    @TempDir
    Path dir;

    private static final byte[] DATA = {1, 2, 3, 4, 5, 6, 7, 8};

    private BlockBackend open(BlockGraph g, Map<String, Object> extra) throws Exception {
        g.open(TestGraphs.opts("driver", "memory", "node-name", "m0"));
        Map<String, Object> o = new LinkedHashMap<>(Map.of("driver", "blkdebug", "node-name", "dbg", "file", "m0"));
        o.putAll(extra);
        g.open(io.diskstack.core.options.OptionTree.flatten(o));
        BlockBackend b = g.addBackend("d", "dbg", true);
        b.write(0, ByteBuffer.wrap(DATA.clone()), 0);
        return b;
    }

    private static byte[] read8(BlockBackend b) throws Exception {
        ByteBuffer back = ByteBuffer.allocate(8);
        b.read(0, back);
        return back.array();
    }

    private static byte n(int v) {
        return (byte) ~v;
    }

    @Test
    void onlyTheRulesThatFireCorrupt() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend b = open(g, Map.of("inject-corrupt", List.of(
                    Map.of("offset", 0, "length", 2),
                    Map.of("offset", 4, "length", 2, "once", true),
                    Map.of("offset", 6, "length", 1, "every", 2))));
            // First read: rules 0 and 1 fire; rule 2 is at its first match of two.
            assertArrayEquals(new byte[] {n(1), n(2), 3, 4, n(5), n(6), 7, 8}, read8(b));
            // Second: rule 1 is spent, rule 2 fires.
            assertArrayEquals(new byte[] {n(1), n(2), 3, 4, 5, 6, n(7), 8}, read8(b));
            // Third: only rule 0.
            assertArrayEquals(new byte[] {n(1), n(2), 3, 4, 5, 6, 7, 8}, read8(b));
        }
    }

    @Test
    void overlappingRulesCorruptEachByteOnce() throws Exception {
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend b = open(g, Map.of("inject-corrupt", List.of(
                    Map.of("offset", 0, "length", 4),
                    Map.of("offset", 2, "length", 4))));
            assertArrayEquals(new byte[] {n(1), n(2), n(3), n(4), n(5), n(6), 7, 8}, read8(b));
        }
    }

    @Test
    void aOnceRuleFiresOnceWhateverTheRace() throws Exception {
        int threads = 8;
        CyclicBarrier barrier = new CyclicBarrier(threads);
        for (int round = 0; round < 1500; round++) {
            InjectionRule rule = InjectionRule.parse(Action.ERROR, "test", Map.of("once", true));
            AtomicInteger fired = new AtomicInteger();
            List<Background<Void>> ts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                ts.add(Background.start("rule-" + t, () -> {
                    barrier.await(30, TimeUnit.SECONDS);
                    if (rule.fires(IoType.WRITE, 0, 512)) {
                        fired.incrementAndGet();
                    }
                }));
            }
            for (Background<Void> t : ts) {
                t.join();
            }
            assertEquals(1, fired.get(), "round " + round + ": a once-rule fired " + fired.get() + " times");
        }
    }
}
