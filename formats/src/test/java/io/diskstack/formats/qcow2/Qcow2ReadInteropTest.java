package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Images made by qemu-img read through our driver equal qemu-img convert -O raw. */
class Qcow2ReadInteropTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    /** A raw image of {@code size} bytes: random runs, zero runs and a repeated pattern. */
    static Path makeRaw(Path dir, String name, int size, long seed) throws IOException {
        byte[] b = new byte[size];
        java.util.Random r = new java.util.Random(seed);
        int pos = 0;
        while (pos < size) {
            int run = Math.min(size - pos, 512 * (1 + r.nextInt(300)));
            switch (r.nextInt(3)) {
                case 0 -> {
                    byte[] x = TestGraphs.randomBytes(r.nextLong(), run);
                    System.arraycopy(x, 0, b, pos, run);
                }
                case 1 -> Arrays.fill(b, pos, pos + run, (byte) (1 + r.nextInt(200)));
                default -> { }
            }
            pos += run;
        }
        Path p = dir.resolve(name);
        Files.write(p, b);
        return p;
    }

    private void roundTrip(String opts, boolean compress) throws IOException {
        Path raw = makeRaw(dir, "src.raw", 6 << 20, opts.hashCode());
        Path img = dir.resolve("img.qcow2");
        if (compress) {
            Qemu.img("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", opts, raw.toString(), img.toString());
        } else {
            Qemu.img("convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw.toString(), img.toString());
        }
        // a few qemu-io touches: zero clusters, partial overwrites
        Qemu.io(img, "write -z 1M 128k", "write -P 0x5a 3000k 8k");
        byte[] expected = Qemu.raw(img);
        assertArrayEquals(expected, Qemu.readOurs(img), opts + (compress ? " compressed" : ""));
    }

    @ParameterizedTest
    @ValueSource(ints = {512, 1024, 4096, 16384, 65536, 262144, 1 << 20, 2 << 20})
    void everyClusterSizeV3(int clusterSize) throws IOException {
        roundTrip("cluster_size=" + clusterSize, false);
    }

    @ParameterizedTest
    @ValueSource(ints = {512, 4096, 65536, 2 << 20})
    void version2(int clusterSize) throws IOException {
        roundTrip("compat=0.10,cluster_size=" + clusterSize, false);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 4, 8, 32, 64})
    void refcountWidths(int bits) throws IOException {
        roundTrip("refcount_bits=" + bits + ",cluster_size=4096", false);
    }

    @ParameterizedTest
    @ValueSource(ints = {4096, 65536, 2 << 20})
    void compressedDeflate(int clusterSize) throws IOException {
        roundTrip("cluster_size=" + clusterSize, true);
    }

    @ParameterizedTest
    @ValueSource(ints = {4096, 65536})
    void compressedZstd(int clusterSize) throws IOException {
        roundTrip("compression_type=zstd,cluster_size=" + clusterSize, true);
    }

    @ParameterizedTest
    @ValueSource(ints = {16384, 65536, 2 << 20})
    void extendedL2(int clusterSize) throws IOException {
        Path img = dir.resolve("x.qcow2");
        Qemu.img("create", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=" + clusterSize, img.toString(), "8M");
        int sub = clusterSize / 32;
        Qemu.io(img, "write -P 0x11 0 " + sub, "write -P 0x22 " + (3 * sub + 512) + " 1k",
                "write -P 0x33 " + clusterSize + " " + (clusterSize + sub), "write -z " + (clusterSize + 2 * sub) + " " + sub,
                "write -P 0x44 5M 64k");
        assertArrayEquals(Qemu.raw(img), Qemu.readOurs(img));
    }

    @Test
    void threeDeepBackingChain() throws IOException {
        Path base = dir.resolve("base.qcow2");
        Path mid = dir.resolve("mid.qcow2");
        Path top = dir.resolve("top.qcow2");
        Qemu.img("create", "-f", "qcow2", base.toString(), "8M");
        Qemu.io(base, "write -P 0x01 0 4M");
        Qemu.img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-o", "cluster_size=4096",
                mid.toString());
        Qemu.io(mid, "write -P 0x02 1M 1M", "write -z 2500k 100k");
        Qemu.img("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top.toString(), "12M");
        Qemu.io(top, "write -P 0x03 1536k 1M", "write -P 0x04 10M 4k");
        byte[] expected = Qemu.raw(top);
        assertEquals(12 << 20, expected.length);
        assertArrayEquals(expected, Qemu.readOurs(top));
    }

    @Test
    void rawBackingWithoutFormatIsProbed() throws IOException {
        Path base = makeRaw(dir, "base.img", 4 << 20, 7);
        Path top = dir.resolve("top.qcow2");
        Qemu.img("create", "-f", "qcow2", "-b", "base.img", "-F", "raw", top.toString(), "4M");
        Qemu.io(top, "write -P 0x07 64k 64k");
        byte[] expected = Qemu.raw(top);
        // turn the backing format extension into an unknown one, so that we have to probe
        byte[] header = Files.readAllBytes(top);
        java.nio.ByteBuffer h = java.nio.ByteBuffer.wrap(header);
        int at = 112;
        assertEquals(0xe2792aca, h.getInt(at));
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(top,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.allocate(4).putInt(0, 0x12345678), at);
        }
        assertArrayEquals(expected, Qemu.readOurs(top));
    }
}
