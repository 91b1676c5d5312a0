package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Background;
import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * kill -9 of the mounted daemon at random moments under a heavy random-write load (fio on one
 * half of the disk, a verifying writer with fsyncs on the other): qemu-img check never reports
 * corruption, {@code diskstack check -r leaks} repairs any leaks, and every write completed
 * before a completed fsync reads back after the crash.
 */
class Qcow2CrashTest {
    private static final int SLOT = 64 << 10;
    private static final int SLOTS = 512;
    private static final int KILLS = 6;

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Shell.requireTool("qemu-img");
        Shell.requireTool("fio");
    }

    private static byte[] content(int slot) {
        byte[] b = new byte[SLOT];
        new Random(slot * 7919L + 1).nextBytes(b);
        return b;
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=65536", "cluster_size=4096,lazy_refcounts=on"})
    void killNineNeverCorruptsAndKeepsFsyncedData(String options) throws Exception {
        Path img = dir.resolve("crash.qcow2");
        run("qemu-img", "create", "-f", "qcow2", "-o", options, img.toString(), "64M").ok();
        Files.writeString(dir.resolve("config.json"), """
                {"blockdev": [{"driver": "qcow2", "node-name": "q0",
                               "file": {"driver": "file", "filename": "crash.qcow2"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true}]}
                """);
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < SLOTS; i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(options.hashCode()));
        AtomicInteger next = new AtomicInteger();
        Map<Integer, Boolean> durable = new HashMap<>();
        Random rnd = new Random(42);
        for (int kill = 0; kill < KILLS; kill++) {
            MountedDaemon d = MountedDaemon.mount(dir.resolve("config.json"), dir.resolve("mnt"));
            Process fio = new ProcessBuilder("fio", "--name=load", "--filename=" + d.disk("disk0"), "--rw=randwrite",
                    "--bs=4k", "--direct=1", "--offset=32M", "--size=32M", "--ioengine=psync", "--numjobs=2", "--thread",
                    "--time_based", "--runtime=20", "--fsync=32", "--output=/dev/null")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            List<Integer> confirmed = new ArrayList<>();
            Background<Void> writer = Background.start("writer", () -> {
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
                }
            });
            // The kill lands at a random point of the writes: the random wait is what is under test.
            Thread.sleep(300 + rnd.nextInt(1200));
            d.kill9();
            writer.join();
            fio.descendants().forEach(ProcessHandle::destroyForcibly); // none with --thread, but never leave any
            fio.destroyForcibly();
            fio.waitFor();
            // fio may have recreated its file in the bare folder once the dead mount was cleared
            Files.deleteIfExists(dir.resolve("mnt").resolve("disk0"));
            synchronized (confirmed) {
                confirmed.forEach(s -> durable.put(s, true));
            }
            Shell.Result check = run("qemu-img", "check", img.toString());
            assertTrue(check.exitCode() == 0 || check.exitCode() == 3,
                    "kill " + kill + ": qemu-img check found corruption: " + check.stdout() + check.stderr());
            if (check.exitCode() == 3) {
                InProcessCli.Outcome repair = InProcessCli.diskstack("check", "-r", "leaks", img.toString());
                assertEquals(0, repair.code(), repair.out());
                Shell.Result again = run("qemu-img", "check", img.toString());
                assertEquals(0, again.exitCode(), "after diskstack check -r leaks: " + again.stdout());
            }
            Path raw = dir.resolve("crash.raw");
            Files.deleteIfExists(raw);
            run("qemu-img", "convert", "-O", "raw", img.toString(), raw.toString()).ok();
            try (FileChannel ch = FileChannel.open(raw)) {
                for (int slot : durable.keySet()) {
                    ByteBuffer b = ByteBuffer.allocate(SLOT);
                    ch.read(b, (long) slot * SLOT);
                    assertArrayEquals(content(slot), b.array(), "kill " + kill + ": fsynced slot " + slot + " lost");
                }
            }
        }
        assertTrue(durable.size() > 8, "the writer got " + durable.size() + " slots fsynced");
    }

    /**
     * Every cluster allocated since the last flush leaks at a kill -9 (its refcount is on disk,
     * the L2 entry not yet). A writable remount repairs the leaks at open, with one log line that
     * counts them, so the leaked clusters are used again: qemu-img check finds no leak after a
     * clean unmount, and the image does not grow across repeated kills.
     */
    @Test
    void leaksOfAKillAreRepairedAtTheNextMountAndTheImageDoesNotGrow() throws Exception {
        Path img = dir.resolve("leaky.qcow2");
        run("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=65536", img.toString(), "64M").ok();
        Files.writeString(dir.resolve("leaky.json"), """
                {"blockdev": [{"driver": "qcow2", "node-name": "q0",
                               "file": {"driver": "file", "filename": "leaky.qcow2"}}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true}]}
                """);
        Path mnt = dir.resolve("mnt");
        long sizeAfterFirstKill = 0;
        for (int kill = 0; kill < 4; kill++) {
            MountedDaemon d = MountedDaemon.mount(dir.resolve("leaky.json"), mnt);
            if (kill > 0) {
                String log = d.log();
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("leaky.qcow2': was not closed cleanly; "
                        + "repaired its refcounts, freeing ([0-9]+) leaked clusters").matcher(log);
                assertTrue(m.find(), "one line with the count: " + log);
                assertTrue(Long.parseLong(m.group(1)) >= 300, log);
                assertEquals(1, log.split("was not closed cleanly", -1).length - 1, log);
            }
            // 20 MiB of new clusters, acknowledged but never flushed: all of them leak at the kill
            try (FileChannel ch = FileChannel.open(d.disk("disk0"), StandardOpenOption.WRITE)) {
                ByteBuffer b = ByteBuffer.wrap(content(kill));
                for (long pos = 0; pos < 20 << 20; pos += SLOT) {
                    b.clear();
                    while (b.hasRemaining()) {
                        ch.write(b, pos + b.position());
                    }
                }
            }
            d.kill9();
            Shell.Result check = run("qemu-img", "check", img.toString());
            assertEquals(3, check.exitCode(), "kill " + kill + " leaked clusters: " + check.stdout() + check.stderr());
            long size = Files.size(img);
            if (kill == 0) {
                sizeAfterFirstKill = size;
            } else {
                assertTrue(size <= sizeAfterFirstKill + (1 << 20), "kill " + kill + ": the image grew from "
                        + sizeAfterFirstKill + " to " + size + " bytes");
            }
        }
        MountedDaemon d = MountedDaemon.mount(dir.resolve("leaky.json"), mnt);
        assertEquals(0, d.stop(), d.log());
        Shell.Result check = run("qemu-img", "check", img.toString());
        assertEquals(0, check.exitCode(), "after the remount: " + check.stdout() + check.stderr());
    }
}
