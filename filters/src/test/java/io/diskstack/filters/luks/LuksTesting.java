package io.diskstack.filters.luks;

import static io.diskstack.core.testing.TestGraphs.opts;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.objects.Secret;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.OptionTree;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Creating and opening LUKS images in tests, with cheap key derivation. */
final class LuksTesting {
    static final String PASS = "correct horse battery staple";

    private LuksTesting() {}

    static ObjectRegistry secrets(String... idAndPass) {
        ObjectRegistry r = ObjectRegistry.load();
        for (int i = 0; i < idAndPass.length; i += 2) {
            r.put(idAndPass[i], new Secret(idAndPass[i], idAndPass[i + 1].getBytes(StandardCharsets.UTF_8)));
        }
        return r;
    }

    /** Creates an image with secret 's0' = {@link #PASS}, iter-time 1 ms, plus the given -o options. */
    static void create(Path file, long size, Object... options) throws IOException {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("key-secret", "s0");
        o.put("iter-time", "1");
        for (int i = 0; i < options.length; i += 2) {
            o.put((String) options[i], options[i + 1]);
        }
        try (ObjectRegistry objects = secrets("s0", PASS)) {
            new LuksDriver().create(new ImageCreateContext(file, size, new NodeOptions("create",
                    OptionTree.flatten(o)), objects, DriverRegistry.load()));
        }
    }

    static void addSecret(BlockGraph graph, String id, String pass) {
        graph.objects().put(id, new Secret(id, pass.getBytes(StandardCharsets.UTF_8)));
    }

    /** Opens file → luks as 'l0' with secret 's0' = {@link #PASS} and returns node-name l0. */
    static String openLuks(BlockGraph graph, String filename, Object... extra) throws IOException {
        addSecret(graph, "s0", PASS);
        graph.open(opts("driver", "file", "node-name", "f0", "filename", filename));
        Object[] o = new Object[8 + extra.length];
        System.arraycopy(new Object[] {"driver", "luks", "node-name", "l0", "file", "f0", "key-secret", "s0"}, 0, o, 0, 8);
        System.arraycopy(extra, 0, o, 8, extra.length);
        graph.open(opts(o));
        return "l0";
    }

    /** Writes encrypted zeroes over the whole disk, so a new image reads as zeroes. */
    static void zeroFill(BlockBackend disk) throws IOException {
        disk.writeZeroes(0, disk.size(), 0);
    }

    /** The JSON text of a LUKS2 image's primary header. */
    static String luks2Json(byte[] img) {
        int end = 4096;
        while (img[end] != 0) {
            end++;
        }
        return new String(img, 4096, end - 4096, StandardCharsets.UTF_8);
    }

    /** Replaces the JSON of both LUKS2 header copies (at 0 and at hdr_size); with {@code fixChecksum}, fixes their sha256 checksums. */
    static void rewriteLuks2Json(byte[] img, String json, boolean fixChecksum) {
        int hdr = (int) java.nio.ByteBuffer.wrap(img).getLong(8);
        for (int at : new int[] {0, hdr}) {
            java.util.Arrays.fill(img, at + 4096, at + hdr, (byte) 0);
            byte[] j = json.getBytes(StandardCharsets.UTF_8);
            System.arraycopy(j, 0, img, at + 4096, Math.min(j.length, hdr - 4096));
        }
        if (fixChecksum) {
            fixLuks2Checksums(img);
        }
    }

    /** Recomputes the sha256 checksums of both LUKS2 header copies. */
    static void fixLuks2Checksums(byte[] img) {
        int hdr = (int) java.nio.ByteBuffer.wrap(img).getLong(8);
        for (int at : new int[] {0, hdr}) {
            java.util.Arrays.fill(img, at + 448, at + 512, (byte) 0);
            try {
                byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(
                        java.util.Arrays.copyOfRange(img, at, at + hdr));
                System.arraycopy(d, 0, img, at + 448, 32);
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }
    }
}
