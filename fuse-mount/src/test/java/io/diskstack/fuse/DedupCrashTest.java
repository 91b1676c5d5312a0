package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.fuse.InProcessCli.Outcome;
import io.diskstack.fuse.testing.MountedDaemon;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 of the mounted daemon at random moments under a random-write load with duplicates (fio
 * with dedupe_percentage on one half of a dedup disk, a writer of slots that share content, with
 * fsyncs, on the other): {@code diskstack check -f dedup} finds no corruption (a leak would be
 * repaired with -r leaks), and every slot written before a completed fsync reads back. (The
 * power-loss side, any subset of unflushed writes, is formats' DedupPowerLossTest.)
 */
class DedupCrashTest {
    private static final int SLOT = 64 << 10;
    private static final int SLOTS = 512;
    private static final int KILLS = 5;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Shell.requireTool("fio");
    }

    /** 48 distinct contents over 512 slots: most slots share theirs with others. */
    private static byte[] content(int slot) {
        byte[] b = new byte[SLOT];
        new Random(slot % 48 * 7919L + 1).nextBytes(b);
        return b;
    }

    private String files() {
        return "metadata=" + dir.resolve("meta.img") + ",data=" + dir.resolve("data.img");
    }

    @Test
    void killNineNeverCorruptsAndKeepsFsyncedData() throws Exception {
        assertEquals(0, diskstack("create", "-f", "dedup", "-o", files(), "64M").code());
        Files.writeString(dir.resolve("config.json"), """
                {"blockdev": [{"driver": "dedup", "node-name": "dd0",
                               "metadata": {"driver": "file", "filename": "meta.img"},
                               "data": {"driver": "file", "filename": "data.img"}}],
                 "exports": [{"id": "disk0", "node-name": "dd0", "writable": true}]}
                """);
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < SLOTS; i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(5));
        AtomicInteger next = new AtomicInteger();
        Map<Integer, Boolean> durable = new HashMap<>();
        Random rnd = new Random(42);
        for (int kill = 0; kill < KILLS; kill++) {
            MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
            Process fio = new ProcessBuilder("fio", "--name=load", "--filename=" + d.disk("disk0"), "--rw=randwrite",
                    "--bs=4k", "--direct=1", "--offset=32M", "--size=32M", "--ioengine=psync", "--numjobs=2", "--thread",
                    "--dedupe_percentage=50", "--time_based", "--runtime=20", "--fsync=32", "--output=/dev/null")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            List<Integer> confirmed = new ArrayList<>();
            AtomicReference<Throwable> unexpected = new AtomicReference<>();
            Thread writer = new Thread(() -> {
                List<Integer> pending = new ArrayList<>();
                try (FileChannel ch = FileChannel.open(d.disk("disk0"), StandardOpenOption.WRITE)) {
                    while (next.get() < SLOTS) {
                        int slot = order.get(next.getAndIncrement());
                        ByteBuffer b = ByteBuffer.wrap(content(slot));
                        long pos = (long) slot * SLOT;
                        while (b.hasRemaining()) {
                            pos += ch.write(b, pos);
                        }
                        pending.add(slot);
                        if (pending.size() == 4) {
                            ch.force(false);
                            synchronized (confirmed) {
                                confirmed.addAll(pending);
                            }
                            pending.clear();
                        }
                    }
                } catch (IOException e) {
                    // the daemon died under us: what was not fsynced is not promised
                } catch (RuntimeException | Error e) {
                    unexpected.set(e);
                }
            });
            writer.start();
            Thread.sleep(400 + rnd.nextInt(1200));
            d.kill9();
            writer.join(30_000);
            fio.destroyForcibly();
            fio.waitFor();
            Files.deleteIfExists(dir.resolve("mnt").resolve("disk0"));
            assertEquals(null, unexpected.get(), "the writer failed");
            synchronized (confirmed) {
                confirmed.forEach(s -> durable.put(s, true));
            }
            Outcome check = diskstack("check", "-f", "dedup", "-o", files());
            assertTrue(check.code() == 0 || check.code() == 3, "kill " + kill + ": " + check.out() + check.err());
            if (check.code() == 3) {
                Outcome repair = diskstack("check", "-r", "leaks", "-f", "dedup", "-o", files());
                assertEquals(0, repair.code(), repair.out());
            }
            try (BlockGraph g = TestGraphs.newGraph(dir)) {
                g.open(TestGraphs.opts("driver", "dedup", "node-name", "dd0", "read-only", true,
                        "metadata", Map.of("driver", "file", "filename", dir.resolve("meta.img").toString()),
                        "data", Map.of("driver", "file", "filename", dir.resolve("data.img").toString())));
                BlockBackend disk = g.addBackend("d0", "dd0", false);
                for (int slot : durable.keySet()) {
                    ByteBuffer b = ByteBuffer.allocate(SLOT);
                    disk.read((long) slot * SLOT, b);
                    assertArrayEquals(content(slot), b.array(), "kill " + kill + ": fsynced slot " + slot + " lost");
                }
            }
        }
        assertTrue(durable.size() > 8, "the writer got " + durable.size() + " slots fsynced");
    }
}
