package io.diskstack.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.nbd.testing.NbdPeer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The nbd node against real servers on loopback (qemu-nbd, nbdkit) and against misbehaving ones. */
class NbdClientTest {
    @TempDir
    Path dir;
    private BlockGraph graph;
    private final ExecutorService pool = Executors.newCachedThreadPool();

    private final java.util.List<AutoCloseable> peers = new java.util.ArrayList<>();

    @AfterEach
    void close() throws Exception {
        pool.shutdownNow();
        if (graph != null) {
            graph.close(); // before the servers: a node whose server is gone would wait out its reconnect-delay
        }
        for (AutoCloseable p : peers) {
            p.close();
        }
    }

    private <T extends AutoCloseable> T track(T peer) {
        peers.add(peer);
        return peer;
    }

    private BlockBackend open(String options) throws IOException {
        graph = TestGraphs.newGraph(dir);
        graph.open(KeyVal.parse("driver=nbd,node-name=n0," + options, null));
        return graph.addBackend("disk0", "n0", true);
    }

    private static byte[] read(BlockBackend disk, long offset, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(length);
        disk.read(offset, b);
        return TestGraphs.toArray(b);
    }

    private static void write(BlockBackend disk, long offset, byte[] data) throws IOException {
        disk.write(offset, TestGraphs.direct(data), 0);
    }

    private long stat(String name) {
        return graph.node("n0").stats().get(name).longValue();
    }

    @Test
    void anErrorTheServerInjectsReachesTheRequestAndNothingElse() throws Exception {
        Path trigger = dir.resolve("fail-reads");
        try (NbdPeer peer = NbdPeer.nbdkit(dir, "--filter=error", "memory", "16M", "error=EIO",
                "error-pread-rate=100%", "error-pread-file=" + trigger)) {
            BlockBackend disk = open(peer.nodeOptions());
            byte[] data = TestGraphs.randomBytes(1, 65536);
            write(disk, 4096, data);
            Files.writeString(trigger, "");
            BlockIOException e = assertThrows(BlockIOException.class, () -> read(disk, 4096, 4096));
            assertEquals(Errno.EIO, e.errno());
            assertTrue(e.getMessage().contains("read at 4096 failed: EIO"), e.getMessage());
            write(disk, 0, new byte[4096]); // writes still work while reads fail
            Files.delete(trigger);
            assertArrayEquals(data, read(disk, 4096, 65536), "the disk is not affected");
            assertEquals(1L, stat("connected"));
            assertEquals(0L, stat("connection-losses"), "an error reply is not a lost connection");
            assertEquals(1L, stat("errors"));
        }
    }

    @Test
    void concurrentRequestsWhoseRepliesOvertakeEachOtherEachGetTheirOwn() throws Exception {
        // reads wait in the server and writes do not, so replies come back in another order than
        // the requests went out, and a thread reading replies meets other threads' ones
        try (NbdPeer peer = NbdPeer.nbdkit(dir, "--filter=delay", "memory", "64M", "rdelay=3ms")) {
            BlockBackend disk = open(peer.nodeOptions());
            int region = 1 << 20;
            concurrentlyWithoutTrouble(16, id -> {
                for (int round = 0; round < 20; round++) {
                    int length = 4096 << (round % 5);
                    long at = (long) id * region + (round * 4096L) % (region - length);
                    byte[] data = TestGraphs.randomBytes(id * 1000 + round, length);
                    write(disk, at, data);
                    assertArrayEquals(data, read(disk, at, length), "thread " + id + " round " + round);
                }
            });
        }
    }

    @Test
    void concurrentReadsOfPartlyAllocatedRangesGetEveryChunkOfTheirReplies() throws Exception {
        // qemu-nbd answers a read over data and holes with several chunks (data, hole, data, ...)
        Path image = dir.resolve("sparse.qcow2");
        Shell.run("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=4096", image.toString(), "64M").ok();
        NbdPeer peer = track(NbdPeer.qemuNbd(dir, image, "qcow2"));
        BlockBackend disk = open(peer.nodeOptions());
        int region = 1 << 20;
        concurrentlyWithoutTrouble(8, id -> {
            byte[] model = new byte[region];
            java.util.Random random = new java.util.Random(id);
            for (int round = 0; round < 40; round++) {
                int at = random.nextInt(region / 4096) * 4096;
                byte[] block = TestGraphs.randomBytes(id * 1000 + round, 4096);
                write(disk, (long) id * region + at, block);
                System.arraycopy(block, 0, model, at, 4096);
                int from = random.nextInt(region / 4096 - 64) * 4096;
                assertArrayEquals(java.util.Arrays.copyOfRange(model, from, from + (256 << 10)),
                        read(disk, (long) id * region + from, 256 << 10), "thread " + id + " round " + round);
            }
        });
    }

    /** What one of several threads does, given its number. */
    private interface Worker {
        void run(int id) throws Exception;
    }

    /** Runs {@code worker} on that many threads at once; each must succeed, with no connection lost and no request failed. */
    private void concurrentlyWithoutTrouble(int threads, Worker worker) throws Exception {
        java.util.List<Future<?>> workers = new java.util.ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            workers.add(pool.submit(() -> {
                worker.run(id);
                return null;
            }));
        }
        for (Future<?> w : workers) {
            w.get(60, TimeUnit.SECONDS);
        }
        assertEquals(0L, stat("connection-losses"));
        assertEquals(0L, stat("errors"));
    }

    @Test
    void aRequesterWhoseInterruptIsPendingIsServedAndKeepsItsInterrupt() throws Exception {
        try (NbdPeer peer = NbdPeer.nbdkit(dir, "memory", "16M")) {
            BlockBackend disk = open(peer.nodeOptions());
            byte[] data = TestGraphs.randomBytes(4, 8192);
            Future<byte[]> done = pool.submit(() -> {
                Thread.currentThread().interrupt();
                write(disk, 0, data);
                byte[] back = read(disk, 0, data.length);
                assertTrue(Thread.interrupted(), "the interrupt is kept for the caller");
                return back;
            });
            assertArrayEquals(data, done.get(30, TimeUnit.SECONDS));
            assertEquals(0L, stat("connection-losses"), "the connection did not close under the interrupt");
        }
    }

    @Test
    void anUnknownExportIsAOneLineConfigError() throws Exception {
        NbdPeer peer = track(NbdPeer.qemuNbd(dir, image("a.raw", "1M"), "raw"));
        {
            ConfigException e = assertThrows(ConfigException.class,
                    () -> open(peer.nodeOptions().replace("export=vol", "export=nope")));
            assertEquals("blockdev 'n0' (nbd): 127.0.0.1:" + peer.port() + " has no export 'nope': export 'nope' not present",
                    e.getMessage());
        }
    }

    @Test
    void badAddressesAreOneLineConfigErrors() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> open("server.type=inet,server.host=no-such-host.invalid,server.port=10809"));
        assertEquals("blockdev 'n0' (nbd): 'server.host' 'no-such-host.invalid' does not resolve", e.getMessage());
        e = assertThrows(ConfigException.class, () -> open("server.type=inet,server.host=127.0.0.1,server.port="
                + NbdPeer.freePort()));
        assertTrue(e.getMessage().matches("blockdev 'n0' \\(nbd\\): cannot connect to 127\\.0\\.0\\.1:[0-9]+: Connection refused"),
                e.getMessage());
        e = assertThrows(ConfigException.class, () -> open("server.type=tcp,server.host=h"));
        assertEquals("blockdev 'n0' (nbd): 'server.type' value 'tcp' is not one of inet, unix", e.getMessage());
        e = assertThrows(ConfigException.class, () -> open("server.type=inet,server.host=127.0.0.1,reconnect-delay=x"));
        assertEquals("blockdev 'n0' (nbd): 'reconnect-delay' value 'x' is not a number", e.getMessage());
        e = assertThrows(ConfigException.class, () -> open("export=x"));
        assertTrue(e.getMessage().startsWith("blockdev 'n0' (nbd): 'server' is required"), e.getMessage());
    }

    @Test
    void aServerThatClosesMidNegotiationIsAClearErrorNotAHang() throws Exception {
        FakeServer fake = track(new FakeServer((in, out) -> {
            out.writeLong(Nbd.NBDMAGIC);
            out.flush();
        }));
        {
            ConfigException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> assertThrows(ConfigException.class, () -> open(fake.nodeOptions())));
            assertEquals("blockdev 'n0' (nbd): 127.0.0.1:" + fake.port() + " closed the connection during negotiation",
                    e.getMessage());
        }
    }

    @Test
    void anUnknownStructuredReplyTypeFailsTheRequestNotAHang() throws Exception {
        FakeServer fake = track(new FakeServer((in, out) -> {
            FakeServer.negotiate(in, out, 1 << 20);
            while (true) {
                in.readInt();
                in.readShort();
                in.readShort();
                long cookie = in.readLong();
                in.readLong();
                in.readInt();
                out.writeInt(Nbd.STRUCTURED_REPLY_MAGIC);
                out.writeShort(Nbd.REPLY_FLAG_DONE);
                out.writeShort(42);
                out.writeLong(cookie);
                out.writeInt(0);
                out.flush();
            }
        }));
        {
            BlockBackend disk = open(fake.nodeOptions());
            BlockIOException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> assertThrows(BlockIOException.class, () -> read(disk, 0, 512)));
            assertEquals(Errno.EIO, e.errno());
            assertTrue(e.getMessage().contains("sent an unknown structured reply type 42"), e.getMessage());
            assertTrue(stat("connection-losses") >= 1, "a server that breaks the protocol is dropped");
        }
    }

    @Test
    void aLostServerIsWaitedForWithinTheReconnectDelayAndRequestsGoOn() throws Exception {
        Path image = image("a.raw", "4M");
        NbdPeer peer = track(NbdPeer.qemuNbd(dir, image, "raw"));
        {
            BlockBackend disk = open(peer.nodeOptions() + ",reconnect-delay=60");
            byte[] data = TestGraphs.randomBytes(2, 8192);
            write(disk, 8192, data);
            disk.flush();
            peer.kill();
            Future<byte[]> waiting = pool.submit(() -> read(disk, 8192, 8192));
            peer.restart();
            assertArrayEquals(data, waiting.get(30, TimeUnit.SECONDS), "the read waited and went to the new server");
            assertEquals(1L, stat("connected"));
            assertEquals(1L, stat("reconnects"));
            assertEquals(0L, stat("errors"));
        }
    }

    @Test
    void withoutADelayRequestsFailAtOnceAndTheNodeReconnectsWhenTheServerIsBack() throws Exception {
        Path image = image("a.raw", "4M");
        NbdPeer peer = track(NbdPeer.qemuNbd(dir, image, "raw"));
        {
            BlockBackend disk = open(peer.nodeOptions());
            byte[] data = TestGraphs.randomBytes(3, 4096);
            write(disk, 0, data);
            disk.flush();
            peer.kill();
            BlockIOException e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                    () -> assertThrows(BlockIOException.class, () -> read(disk, 0, 4096)));
            assertEquals(Errno.EIO, e.errno());
            assertTrue(e.getMessage().contains("reconnecting in the background"), e.getMessage());
            assertTrue(stat("errors") >= 1);
            peer.restart();
            awaitConnected();
            assertArrayEquals(data, read(disk, 0, 4096));
            assertEquals(1L, stat("reconnects"));
        }
    }

    @Test
    void aServerThatComesBackWithAnotherSizeIsNotReconnected() throws Exception {
        Path image = image("a.raw", "4M");
        NbdPeer peer = track(NbdPeer.qemuNbd(dir, image, "raw"));
        {
            BlockBackend disk = open(peer.nodeOptions());
            peer.kill();
            Shell.run("qemu-img", "resize", "-f", "raw", image.toString(), "8M").ok();
            peer.restart();
            BlockIOException e = assertThrows(BlockIOException.class, () -> read(disk, 0, 512));
            assertEquals(Errno.EIO, e.errno());
            assertEquals(0L, stat("reconnects"));
        }
    }

    /** Polls the node's state, as a user would poll its stats; gives up after 20 s. */
    private void awaitConnected() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (stat("connected") == 0) {
            assertTrue(System.nanoTime() < deadline, "the node did not reconnect within 20 s");
            Thread.sleep(20);
        }
    }

    private Path image(String name, String size) {
        Path p = dir.resolve(name);
        Shell.run("qemu-img", "create", "-f", "raw", p.toString(), size).ok();
        return p;
    }
}
