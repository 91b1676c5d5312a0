package io.diskstack.formats.qcow2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.snapshot.InternalSnapshots;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Random write / write-zeroes / discard / snapshot / delete-snapshot / flush / reopen sequences
 * against an in-memory model; then qemu-img check must find nothing and qemu-img must read the
 * same content, for the image and for every snapshot.
 */
class Qcow2PropertyTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        Qemu.require();
    }

    @ParameterizedTest(name = "seed {0}, {1}")
    @CsvSource(delimiter = ';', value = {
        "1;cluster_size=65536",
        "2;cluster_size=4096",
        "3;cluster_size=512",
        "4;cluster_size=65536,compat=0.10",
        "5;cluster_size=32768,extended_l2=on",
        "6;cluster_size=4096,refcount_bits=2",
        "7;cluster_size=16384,lazy_refcounts=on",
        "8;cluster_size=2097152",
        "9;cluster_size=4096,refcount_bits=64,backing",
        "10;cluster_size=65536,extended_l2=on,backing",
    })
    void randomOperationsMatchTheModel(long seed, String options) throws IOException {
        int size = 6 << 20;
        Path img = dir.resolve("p.qcow2");
        List<String> kv = new ArrayList<>();
        boolean withBacking = false;
        for (String o : options.split(",")) {
            if (o.equals("backing")) {
                withBacking = true;
                continue;
            }
            String[] p = o.split("=");
            kv.add(p[0]);
            kv.add(p[1]);
        }
        byte[] model = new byte[size];
        if (withBacking) {
            Path base = Qcow2ReadInteropTest.makeRaw(dir, "base.raw", 5 << 20, seed);
            byte[] b = Files.readAllBytes(base);
            System.arraycopy(b, 0, model, 0, b.length);
            kv.addAll(List.of("backing_file", "base.raw", "backing_fmt", "raw"));
        }
        Images.create(img, size, kv.toArray(new String[0]));
        boolean v2 = options.contains("compat=0.10");
        boolean snapshotsAllowed = !options.contains("refcount_bits=1,");
        Random rnd = new Random(seed);
        Map<String, byte[]> snaps = new LinkedHashMap<>();
        BlockGraph g = TestGraphs.newGraph(dir);
        BlockBackend d = open(g, img);
        int ops = 400;
        for (int i = 0; i < ops; i++) {
            int op = rnd.nextInt(100);
            int off = rnd.nextInt(size / 512) * 512;
            int len = Math.min(size - off, 512 * (1 + rnd.nextInt(rnd.nextBoolean() ? 8 : 600)));
            if (op < 45) {
                byte[] data = TestGraphs.randomBytes(rnd.nextLong(), len);
                d.write(off, ByteBuffer.wrap(data), 0);
                System.arraycopy(data, 0, model, off, len);
            } else if (op < 60) {
                d.writeZeroes(off, len, rnd.nextBoolean() ? RequestFlags.MAY_UNMAP : 0);
                Arrays.fill(model, off, off + len, (byte) 0);
            } else if (op < 70) {
                d.discard(off, len);
                // discard is advisory: learn what it left, but it must be old data or zeroes
                ByteBuffer back = ByteBuffer.allocate(len);
                d.read(off, back);
                for (int k = 0; k < len; k++) {
                    byte now = back.get(k);
                    if (now != 0 && now != model[off + k]) {
                        throw new AssertionError("discard at " + off + "+" + len + " left byte " + (off + k)
                                + " neither old nor zero (v2=" + v2 + ")");
                    }
                    model[off + k] = now;
                }
            } else if (op < 74 && snapshotsAllowed) {
                String name = "s" + i;
                try {
                    node(g).createSnapshot(name);
                    snaps.put(name, model.clone());
                } catch (io.diskstack.core.BlockIOException e) {
                    // narrow refcounts run out after a few snapshots: refused, nothing changed
                    if (!options.contains("refcount_bits=2") || !e.getMessage().contains("refcount overflow")) {
                        throw e;
                    }
                }
            } else if (op < 76 && !snaps.isEmpty()) {
                String victim = new ArrayList<>(snaps.keySet()).get(rnd.nextInt(snaps.size()));
                node(g).deleteSnapshot(victim);
                snaps.remove(victim);
            } else if (op < 78 && !snaps.isEmpty()) {
                String target = new ArrayList<>(snaps.keySet()).get(rnd.nextInt(snaps.size()));
                try {
                    node(g).revertToSnapshot(target);
                    model = snaps.get(target).clone();
                } catch (io.diskstack.core.BlockIOException e) {
                    if (!options.contains("refcount_bits=2") || !e.getMessage().contains("refcount overflow")) {
                        throw e;
                    }
                }
            } else if (op < 82) {
                d.flush();
            } else if (op < 84) {
                g.close();
                g = TestGraphs.newGraph(dir);
                d = open(g, img);
            } else {
                ByteBuffer back = ByteBuffer.allocate(len);
                d.read(off, back);
                assertArrayEquals(Arrays.copyOfRange(model, off, off + len), back.array(),
                        "read " + off + "+" + len + " after " + i + " operations");
            }
        }
        for (Map.Entry<String, byte[]> s : snaps.entrySet()) {
            try (InternalSnapshots.SnapshotReader r = node(g).openSnapshot(s.getKey())) {
                ByteBuffer all = ByteBuffer.allocate((int) r.size());
                r.read(0, all);
                assertArrayEquals(s.getValue(), all.array(), "our read of snapshot " + s.getKey());
            }
        }
        ByteBuffer all = ByteBuffer.allocate(size);
        d.read(0, all);
        assertArrayEquals(model, all.array(), "whole disk before close");
        assertEquals(true, g.closeAndReport());
        Qemu.checkClean(img);
        assertArrayEquals(model, Qemu.raw(img), "qemu-img reads what we wrote");
        for (Map.Entry<String, byte[]> s : snaps.entrySet()) {
            Path out = dir.resolve("snap.raw");
            Files.deleteIfExists(out);
            Qemu.img("convert", "-l", "snapshot.name=" + s.getKey(), "-O", "raw", img.toString(), out.toString());
            assertArrayEquals(s.getValue(), Files.readAllBytes(out), "qemu-img reads snapshot " + s.getKey());
        }
        if (!snaps.isEmpty()) {
            String list = Qemu.run("qemu-img", "snapshot", "-l", img.toString());
            for (String name : snaps.keySet()) {
                if (!list.contains(" " + name + " ")) {
                    throw new AssertionError("qemu-img snapshot -l lacks " + name + ": " + list);
                }
            }
        }
    }

    private static BlockBackend open(BlockGraph g, Path img) throws IOException {
        g.open(Images.node("q0", img));
        return g.addBackend("d", "q0", true);
    }

    private static InternalSnapshots node(BlockGraph g) {
        return (InternalSnapshots) g.node("q0");
    }
}
