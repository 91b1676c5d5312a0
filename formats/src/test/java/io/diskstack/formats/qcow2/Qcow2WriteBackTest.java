package io.diskstack.formats.qcow2;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * When qcow2 writes its cached metadata back between the guest's flushes: only when the cache
 * must give up a dirty table. Random 4 KiB writes that allocate all over a fresh 1 GiB image (two
 * L2 tables, both dirty after a few writes) synced the file every few writes while the default
 * L2 cache, sized to the image, held every table anyway.
 */
class Qcow2WriteBackTest {
    private static final String LOG = "qcow2-write-back";

    @TempDir
    Path dir;

    @Test
    void aCacheThatHoldsEveryTableWritesBackOnlyOnFlush() throws Exception {
        // the one sync: the header's dirty bit, made durable before the first change
        assertEquals(1, randomAllocatingWrites("1G", Map.of()), "syncs before the guest's flush");
    }

    @Test
    void aCacheSmallerThanTheImageStillWritesBackWhenFull() throws Exception {
        // two L2 tables of cache for an image of eight: a write elsewhere must evict a dirty one
        long syncs = randomAllocatingWrites("4G", Map.of("l2-cache-size", "128K"));
        assertTrue(syncs > 10, syncs + " syncs before the guest's flush");
    }

    @Test
    void writersDoNotWaitForTheSyncBehindNewClusters() throws Exception {
        Qemu.require();
        Path img = dir.resolve("seq.qcow2");
        Qemu.img("create", "-f", "qcow2", img.toString(), "1G");
        OpLogDriver.forget(LOG);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "qcow2", "node-name", "q", "file", Map.of("driver", "oplog", "log", LOG,
                    "file", Map.of("driver", "file", "filename", img.toString()))));
            BlockBackend b = g.addBackend("d", "q", true);
            ByteBuffer mib = ByteBuffer.allocateDirect(1 << 20);
            b.write(0, mib.clear(), 0); // the first write syncs the header's dirty bit
            var hold = new OpLogDriver.Hold(new java.util.concurrent.CountDownLatch(1),
                    new java.util.concurrent.CountDownLatch(1));
            OpLogDriver.holdFlushes(LOG, hold);
            try {
                // 96 MiB of new clusters: a sync starts after 64 MiB and is held; the writes go on
                var writer = java.util.concurrent.CompletableFuture.runAsync(() -> {
                    try {
                        for (long at = 1 << 20; at < 97L << 20; at += 1 << 20) {
                            b.write(at, mib.clear(), 0);
                        }
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                });
                assertTrue(hold.entered().await(30, java.util.concurrent.TimeUnit.SECONDS), "no sync behind the allocations");
                // the sync is still held: the writes must finish without it
                writer.get(30, java.util.concurrent.TimeUnit.SECONDS);
            } finally {
                OpLogDriver.holdFlushes(LOG, null);
                hold.release().countDown();
            }
            b.flush();
        }
        Qemu.checkClean(img);
    }

    /**
     * 300 random 4 KiB writes to a new image of {@code size} (a power of two), then a flush;
     * returns how many syncs reached the image file between the open and that flush. The image is
     * clean after it.
     */
    private long randomAllocatingWrites(String size, Map<String, Object> cacheOptions) throws Exception {
        Qemu.require();
        Path img = dir.resolve("fresh.qcow2");
        Qemu.img("create", "-f", "qcow2", img.toString(), size);
        OpLogDriver.forget(LOG);
        List<Object> node = new ArrayList<>(List.of("driver", "qcow2", "node-name", "q",
                "file", Map.of("driver", "oplog", "log", LOG, "file", Map.of("driver", "file", "filename", img.toString()))));
        cacheOptions.forEach((k, v) -> {
            node.add(k);
            node.add(v);
        });
        long syncs;
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts(node.toArray()));
            BlockBackend b = g.addBackend("d", "q", true);
            long atOpen = syncs();
            long mask = b.size() - 1;
            Random random = new Random(42);
            ByteBuffer w = ByteBuffer.allocateDirect(4096);
            for (int i = 0; i < 300; i++) {
                w.clear();
                while (w.hasRemaining()) {
                    w.put((byte) i);
                }
                w.flip();
                b.write(random.nextLong() & mask & ~4095L, w, 0);
            }
            syncs = syncs() - atOpen;
            b.flush();
        }
        Qemu.checkClean(img);
        return syncs;
    }

    private static long syncs() {
        return OpLogDriver.log(LOG).stream().filter(op -> op.kind() == OpLogDriver.FLUSH).count();
    }
}
