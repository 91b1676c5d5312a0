package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Images that outgrow their refcount table and blocks (small clusters, wide refcounts). */
class Qcow2GrowthTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    @ParameterizedTest
    @ValueSource(strings = {"64", "1", "16"})
    void theRefcountTableGrowsAsTheImageDoes(String bits) throws Exception {
        Path img = dir.resolve("g" + bits + ".qcow2");
        int size = 12 << 20;
        Images.create(img, size, "cluster_size", "512", "refcount_bits", bits);
        byte[] model = new byte[size];
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            java.util.Random r = new java.util.Random(Integer.parseInt(bits));
            for (int off = 0; off < size; off += 256 << 10) {
                byte[] data = TestGraphs.randomBytes(off, 256 << 10);
                if (r.nextInt(4) == 0) {
                    continue;
                }
                d.write(off, ByteBuffer.wrap(data), 0);
                System.arraycopy(data, 0, model, off, data.length);
            }
            if (!bits.equals("1")) {
                ((InternalSnapshots) g.node("q0")).createSnapshot("s");
                d.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(9, 1 << 20)), 0);
                System.arraycopy(TestGraphs.randomBytes(9, 1 << 20), 0, model, 0, 1 << 20);
            }
        }
        Qemu.checkClean(img);
        assertArrayEquals(model, Qemu.raw(img));
        assertTrue(Qcow2Check.check(img, false).isClean());
    }

    @Test
    void readOnlyNodesRefuseSnapshots() throws Exception {
        Path img = dir.resolve("ro.qcow2");
        Images.create(img, 1 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            Map<String, Object> o = Images.node("q0", img);
            o.put("read-only", true);
            g.open(o);
            InternalSnapshots s = (InternalSnapshots) g.node("q0");
            BlockIOException e = assertThrows(BlockIOException.class, () -> s.createSnapshot("x"));
            assertTrue(e.getMessage().contains("read-only"), e.getMessage());
        }
    }

    /**
     * Allocating into discarded space behind a long used prefix: the free-cluster search walks
     * the prefix once, not once per allocation.
     */
    @Test
    void allocationsDoNotRescanUsedClusters() throws Exception {
        Path img = dir.resolve("frag.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "cluster_size=4096", img.toString(), "64M");
        Qemu.io(img, "write -P 0x11 0 64M", "discard 16M 32M");
        byte[] data = TestGraphs.randomBytes(4, 4096);
        long prefix = (16 << 20) / 4096;
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(Images.node("q0", img));
            BlockBackend d = g.addBackend("d", "q0", true);
            for (int i = 0; i < 1024; i++) {
                d.write((16 << 20) + i * 8192L, ByteBuffer.wrap(data), 0);
            }
            long scanned = ((Qcow2Node) g.node("q0")).refcounts.scanned;
            assertTrue(scanned < 2 * prefix, scanned + " clusters looked at for 1024 allocations");
        }
        Qemu.checkClean(img);
    }
}
