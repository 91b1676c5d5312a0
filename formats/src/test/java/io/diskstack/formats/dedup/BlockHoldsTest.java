package io.diskstack.formats.dedup;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The primitive hold counts against a HashMap, through growth and many removals (backward shifts). */
class BlockHoldsTest {
    @Test
    void countsMatchAMapThroughGrowthAndRemovals() {
        BlockHolds holds = new BlockHolds();
        Map<Long, Integer> model = new HashMap<>();
        Random r = new Random(3);
        for (int op = 0; op < 60_000; op++) {
            long p = r.nextInt(4) == 0 ? r.nextLong(1L << 40) : r.nextInt(3000);
            if (r.nextInt(3) < 2 || !model.containsKey(p)) {
                holds.add(p);
                model.merge(p, 1, Integer::sum);
            } else {
                holds.remove(p);
                model.computeIfPresent(p, (k, v) -> v == 1 ? null : v - 1);
            }
            if (op % 5000 == 0) {
                for (Map.Entry<Long, Integer> e : model.entrySet()) {
                    assertEquals((int) e.getValue(), holds.get(e.getKey()), "block " + e.getKey() + " after " + op);
                }
                for (long q = 0; q < 3000; q++) {
                    assertEquals((int) model.getOrDefault(q, 0), holds.get(q), "block " + q + " after " + op);
                }
            }
        }
        for (Long p : model.keySet().toArray(new Long[0])) {
            while (model.containsKey(p)) {
                holds.remove(p);
                model.computeIfPresent(p, (k, v) -> v == 1 ? null : v - 1);
            }
            assertEquals(0, holds.get(p));
        }
    }
}
