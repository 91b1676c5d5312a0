package io.diskstack.filters.cor;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.options.OptionTree;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * copy-on-read over a real qcow2 overlay (with and without subclusters) whose base qemu-img made:
 * reads and writes race for fresh clusters, and every cluster must end with the write's data,
 * never a stale copy of the base; the overlay then checks clean with qemu-img and reads the same
 * in qemu-img.
 */
class CopyOnReadQcow2Test {
    private static final int CLUSTER = 65536;
    private static final int SIZE = 8 << 20;

    @TempDir
    Path dir;

    private static String run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), String.join(" ", cmd));
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ": " + out);
        return out;
    }

    private static void requireQemuImg() {
        io.diskstack.core.testing.Shell.requireTool("qemu-img");
        io.diskstack.core.testing.Shell.requireTool("qemu-io");
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=65536", "cluster_size=65536,extended_l2=on"})
    void racingReadsAndWritesNeverLeaveAStaleCopy(String createOptions) throws Exception {
        requireQemuImg();
        String base = dir.resolve("base.qcow2").toString();
        String top = dir.resolve("top.qcow2").toString();
        run("qemu-img", "create", "-q", "-f", "qcow2", base, Integer.toString(SIZE));
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x6b 0 " + SIZE, base);
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", createOptions, "-b", base, "-F", "qcow2", top);
        byte[] pattern = new byte[CLUSTER];
        Arrays.fill(pattern, (byte) 0x6b);
        int clusters = SIZE / CLUSTER;
        byte[][] model = new byte[clusters][];
        try (BlockGraph graph = TestGraphs.newGraph(dir)) {
            graph.open(opts("driver", "qcow2", "node-name", "base", "read-only", true,
                    "file", Map.of("driver", "file", "filename", "base.qcow2")));
            // Delays on the base's reads and before each write widen the races under test.
            graph.open(OptionTree.flatten(Map.of("driver", "blkdebug", "node-name", "jitter", "file", "base",
                    "read-only", true, "inject-delay", List.of(Map.of("iotype", "read", "ms", 2, "every", 2)))));
            graph.open(opts("driver", "qcow2", "node-name", "top", "backing", "jitter",
                    "file", Map.of("driver", "file", "filename", "top.qcow2")));
            graph.open(opts("driver", "copy-on-read", "node-name", "cor", "file", "top"));
            BlockBackend disk = graph.addBackend("disk0", "cor", true);
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            List<Thread> pairs = new ArrayList<>();
            for (int p = 0; p < 4; p++) {
                int id = p;
                pairs.add(new Thread(() -> {
                    Random rnd = new Random(id);
                    try {
                        for (int c = id; c < clusters; c += 4) {
                            long at = (long) c * CLUSTER;
                            int from = rnd.nextBoolean() ? 0 : rnd.nextInt(CLUSTER - 1);
                            int len = from == 0 ? CLUSTER : 1 + rnd.nextInt(CLUSTER - from);
                            byte[] patch = TestGraphs.randomBytes(c, len);
                            byte[] next = pattern.clone();
                            System.arraycopy(patch, 0, next, from, len);
                            model[c] = next;
                            CountDownLatch go = new CountDownLatch(1);
                            int readFrom = rnd.nextInt(CLUSTER / 2);
                            int readLen = 1 + rnd.nextInt(CLUSTER);
                            long delay = rnd.nextInt(3_000_000);
                            Thread reader = new Thread(() -> {
                                try {
                                    go.await();
                                    disk.read(at + readFrom, ByteBuffer.allocate(readLen));
                                } catch (Throwable e) {
                                    errors.add(e);
                                }
                            });
                            reader.start();
                            go.countDown();
                            LockSupport.parkNanos(delay);
                            disk.write(at + from, ByteBuffer.wrap(patch), 0);
                            reader.join();
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                }));
            }
            pairs.forEach(Thread::start);
            for (Thread t : pairs) {
                t.join();
            }
            assertTrue(errors.isEmpty(), errors.toString());
            for (int c = 0; c < clusters; c++) {
                ByteBuffer back = ByteBuffer.allocate(CLUSTER);
                disk.read((long) c * CLUSTER, back);
                assertArrayEquals(model[c], back.array(), "cluster " + c);
            }
            assertTrue(graph.closeAndReport());
        }
        run("qemu-img", "check", "-q", top);
        // Every cluster was written or copied: the overlay alone holds the whole disk.
        String map = run("qemu-img", "map", "--output=json", top);
        assertTrue(!map.contains("\"depth\": 1"), map);
        // And qemu-img reads the same disk.
        Path raw = dir.resolve("top.raw");
        run("qemu-img", "convert", "-O", "raw", top, raw.toString());
        byte[] all = java.nio.file.Files.readAllBytes(raw);
        for (int c = 0; c < clusters; c++) {
            assertArrayEquals(model[c], Arrays.copyOfRange(all, c * CLUSTER, (c + 1) * CLUSTER), "qemu-img, cluster " + c);
        }
    }
}
