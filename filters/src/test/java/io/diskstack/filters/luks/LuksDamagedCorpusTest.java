package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A seeded corpus of damaged LUKS headers: LUKS1 and LUKS2 images made by cryptsetup, qemu-img
 * and diskstack create, mutated in the fields damage and hostility aim at (LUKS1: the strings,
 * payload offset, key size, digest and key-slot costs, offsets and stripes; LUKS2: any JSON
 * value or key replaced by an extreme number, a string with control characters, another type,
 * or removed, with the checksums fixed so the JSON is read; the label; random bytes). For every
 * case the volume opens or fails in seconds with one line that holds no control character and
 * no passphrase; an open volume keeps what is written to it across a close; listing its key
 * slots fails or succeeds the same way.
 */
class LuksDamagedCorpusTest {
    private static final long SEED = 20260117;
    private static final int CASES = 160;
    private static final int CASE_TIMEOUT_SECONDS = 30;
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @BeforeAll
    static void tools() {
        ExternalTools.require("cryptsetup");
        ExternalTools.require("qemu-img");
        // a damaged cost just under the minute's bound would outlast the case's timeout
        KdfCost.limitMillis(3_000);
    }

    @org.junit.jupiter.api.AfterAll
    static void defaultBound() {
        KdfCost.limitMillis(KdfCost.DEFAULT_LIMIT_MILLIS);
    }

    private record Seed(String name, byte[] bytes) {}

    private Seed cryptsetup(String name, long size, String... args) throws Exception {
        Path p = dir.resolve(name);
        try (var ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(size);
            ch.write(ByteBuffer.allocate(1), size - 1);
        }
        List<String> cmd = new ArrayList<>(List.of("cryptsetup", "-q", "luksFormat", "--key-file", "key.txt"));
        cmd.addAll(List.of(args));
        cmd.add(name);
        ExternalTools.ok(dir, cmd.toArray(new String[0]));
        return new Seed(name, Files.readAllBytes(p));
    }

    private List<Seed> seeds() throws Exception {
        Files.writeString(dir.resolve("key.txt"), LuksTesting.PASS);
        List<Seed> seeds = new ArrayList<>();
        String[] pbkdf2 = {"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"};
        seeds.add(cryptsetup("cs1-xts.img", 3 << 20, concat(new String[] {"--type", "luks1"}, pbkdf2)));
        seeds.add(cryptsetup("cs1-cbc.img", 3 << 20, concat(new String[] {"--type", "luks1", "--cipher",
            "aes-cbc-essiv:sha256", "--key-size", "256", "--hash", "sha1"}, pbkdf2)));
        seeds.add(cryptsetup("cs2-pbkdf2.img", 2 << 20, concat(new String[] {"--type", "luks2",
            "--luks2-metadata-size", "16k", "--luks2-keyslots-size", "256k", "--sector-size", "512"}, pbkdf2)));
        seeds.add(cryptsetup("cs2-argon2.img", 2 << 20, "--type", "luks2", "--luks2-metadata-size", "16k",
                "--luks2-keyslots-size", "256k", "--pbkdf", "argon2id", "--pbkdf-memory", "64",
                "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1"));
        ExternalTools.okWithRetry(dir, "qemu-img", "create", "-f", "luks", "--object",
                "secret,id=s0,file=key.txt", "-o", "key-secret=s0,iter-time=10", "qemu.img", "1M");
        seeds.add(new Seed("qemu.img", Files.readAllBytes(dir.resolve("qemu.img"))));
        LuksTesting.create(dir.resolve("ours.img"), 1 << 20, "format", "luks2");
        seeds.add(new Seed("ours.img", Files.readAllBytes(dir.resolve("ours.img"))));
        return seeds;
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void damagedHeadersFailInSecondsWithOneLineOrKeepTheirData() throws Exception {
        List<Seed> seeds = seeds();
        // every seed opens before it is damaged
        for (Seed s : seeds) {
            Files.write(dir.resolve("case.img"), s.bytes());
            assertTrue(open(dir.resolve("case.img"), s.name()).equals("opened"), s.name());
        }
        ExecutorService ex = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "luks-corpus-case");
            t.setDaemon(true);
            return t;
        });
        Map<String, Integer> outcomes = new LinkedHashMap<>();
        try {
            Random master = new Random(SEED);
            for (int i = 0; i < CASES; i++) {
                long caseSeed = master.nextLong();
                Seed seed = seeds.get(i % seeds.size());
                Future<String> f = ex.submit(() -> runOne(seed, caseSeed));
                try {
                    outcomes.merge(f.get(CASE_TIMEOUT_SECONDS, TimeUnit.SECONDS), 1, Integer::sum);
                } catch (TimeoutException e) {
                    fail("case " + i + " (" + seed.name() + ", seed " + caseSeed + ") still running after "
                            + CASE_TIMEOUT_SECONDS + " s");
                } catch (java.util.concurrent.ExecutionException e) {
                    throw new AssertionError("case " + i + " (" + seed.name() + ", seed " + caseSeed + "): "
                            + e.getCause(), e.getCause());
                }
            }
        } finally {
            ex.shutdownNow();
        }
        System.out.println("damaged LUKS corpus: " + outcomes);
        assertTrue(outcomes.getOrDefault("opened", 0) > 0 && outcomes.getOrDefault("refused", 0) > 0, outcomes.toString());
    }

    private String runOne(Seed seed, long caseSeed) throws Exception {
        Random rnd = new Random(caseSeed);
        byte[] img = seed.bytes().clone();
        int version = ((img[6] & 0xff) << 8) | (img[7] & 0xff);
        if (version == 1) {
            mutateLuks1(img, rnd);
        } else {
            mutateLuks2(img, rnd);
        }
        Path p = dir.resolve("case.img");
        Files.write(p, img);
        String where = seed.name() + ", seed " + caseSeed;
        String outcome = open(p, where);
        try {
            LuksKeySlots.listSlots(p);
        } catch (ConfigException e) {
            oneLine(e.getMessage(), where);
        }
        return outcome;
    }

    /** Opens the volume; if it opens, writes, closes, reopens and compares. */
    private String open(Path p, String where) throws Exception {
        byte[] data = TestGraphs.randomBytes(where.hashCode(), 8192);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            String node;
            try {
                node = LuksTesting.openLuks(g, p.getFileName().toString());
            } catch (ConfigException e) {
                oneLine(e.getMessage(), where);
                return "refused";
            }
            BlockBackend d = g.addBackend("d", node, true);
            if (d.size() < data.length) {
                return "opened";
            }
            d.write(0, ByteBuffer.wrap(data), 0);
            d.flush();
        } catch (IOException e) {
            oneLine(e.getMessage(), where);
            return "refused";
        }
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            BlockBackend d = g.addBackend("d", LuksTesting.openLuks(g, p.getFileName().toString()), false);
            ByteBuffer b = ByteBuffer.allocate(data.length);
            d.read(0, b);
            assertArrayEquals(data, b.array(), where + ": what was written does not read back");
        }
        return "opened";
    }

    private static void oneLine(String m, String where) {
        String message = String.valueOf(m);
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                fail(where + ": a control character (0x" + Integer.toHexString(c) + ") in the message: " + message);
            }
        }
        if (message.contains(LuksTesting.PASS)) {
            fail(where + ": the passphrase is in the message");
        }
    }

    // ---- LUKS1: the phdr's fields ----

    private static final long[] COSTS = {0, 1, 7, 0x7fffffffL, 0xffffffffL, 1000};

    private static void mutateLuks1(byte[] img, Random rnd) {
        ByteBuffer b = ByteBuffer.wrap(img);
        int slot = 208 + 48 * rnd.nextInt(8);
        switch (rnd.nextInt(10)) {
            case 0 -> { // a string field: control characters, no NUL, another name
                int[] fields = {8, 40, 72, 168};
                int at = fields[rnd.nextInt(fields.length)];
                byte[][] values = {"aes\n".getBytes(StandardCharsets.US_ASCII), "\u001b[31mred".getBytes(
                    StandardCharsets.US_ASCII), new byte[] {(byte) 0xff, (byte) 0xfe}, "serpent".getBytes(
                    StandardCharsets.US_ASCII)};
                byte[] v = values[rnd.nextInt(values.length)];
                System.arraycopy(v, 0, img, at, v.length);
                if (rnd.nextInt(4) == 0) {
                    java.util.Arrays.fill(img, at, at + 32, (byte) 'A');
                }
            }
            case 1 -> b.putInt(104, (int) new long[] {0, 1, 8, 4096, 0xffffffffL}[rnd.nextInt(5)]); // payload-offset
            case 2 -> b.putInt(108, new int[] {0, 1, 16, 40, 64, 513, -1}[rnd.nextInt(7)]); // key-bytes
            case 3 -> b.putInt(164, (int) COSTS[rnd.nextInt(COSTS.length)]); // mk-digest-iter
            case 4 -> img[112 + rnd.nextInt(52)] ^= (byte) (1 << rnd.nextInt(8)); // digest or its salt
            case 5 -> b.putInt(slot + 4, (int) COSTS[rnd.nextInt(COSTS.length)]); // a slot's iterations
            case 6 -> b.putInt(slot, new int[] {0, 0x00AC71F3, 0x0000DEAD, 0x12345678}[rnd.nextInt(4)]); // active
            case 7 -> b.putInt(slot + 40, new int[] {0, 1, 8, 100000, -1}[rnd.nextInt(5)]); // key material offset
            case 8 -> b.putInt(slot + 44, new int[] {0, 1, 4000, 1 << 20, -1}[rnd.nextInt(5)]); // stripes
            default -> img[rnd.nextInt(592)] ^= (byte) (1 << rnd.nextInt(8));
        }
    }

    // ---- LUKS2: the JSON, the label, random bytes ----

    private static void mutateLuks2(byte[] img, Random rnd) throws IOException {
        int kind = rnd.nextInt(10);
        if (kind == 0) { // bytes anywhere in the primary header, checksum left wrong: the secondary is used
            img[rnd.nextInt(16384)] ^= (byte) (1 << rnd.nextInt(8));
            return;
        }
        if (kind == 1) { // the label and subsystem, with control characters, checksums fixed
            byte[] v = "disk\n\u001b[2Jfake line".getBytes(StandardCharsets.US_ASCII);
            int hdr = (int) ByteBuffer.wrap(img).getLong(8);
            for (int at : new int[] {0, hdr}) {
                System.arraycopy(v, 0, img, at + (rnd.nextBoolean() ? 24 : 208), v.length);
            }
            LuksTesting.fixLuks2Checksums(img);
            return;
        }
        ObjectNode root = (ObjectNode) JSON.readTree(LuksTesting.luks2Json(img));
        List<JsonNode[]> places = new ArrayList<>(); // {parent, key-or-index as a text node}
        collect(root, places);
        JsonNode[] place = places.get(rnd.nextInt(places.size()));
        JsonNodeFactory f = JsonNodeFactory.instance;
        JsonNode[] values = {f.numberNode(0), f.numberNode(-1), f.numberNode(4294967295L),
            f.numberNode(Long.MAX_VALUE), f.numberNode(1e30), f.textNode("18446744073709551615"),
            f.textNode("line\nbreak"), f.textNode("\u0000\u001b[31m"), f.textNode(""), f.objectNode(),
            f.arrayNode(), f.booleanNode(true), f.nullNode()};
        JsonNode value = values[rnd.nextInt(values.length)];
        if (place[0] instanceof ObjectNode o) {
            String key = place[1].asText();
            switch (rnd.nextInt(4)) {
                case 0 -> o.remove(key);
                case 1 -> { // the key itself damaged
                    JsonNode v = o.remove(key);
                    o.set(key + (rnd.nextBoolean() ? "\n" : "\u0007x"), v);
                }
                default -> o.set(key, value);
            }
        } else if (place[0] instanceof ArrayNode a) {
            a.set(place[1].asInt(), value);
        }
        LuksTesting.rewriteLuks2Json(img, JSON.writeValueAsString(root), true);
    }

    private static void collect(JsonNode node, List<JsonNode[]> places) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        if (node instanceof ObjectNode o) {
            for (Iterator<Map.Entry<String, JsonNode>> it = o.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                places.add(new JsonNode[] {o, f.textNode(e.getKey())});
                collect(e.getValue(), places);
            }
        } else if (node instanceof ArrayNode a) {
            for (int i = 0; i < a.size(); i++) {
                places.add(new JsonNode[] {a, f.numberNode(i)});
                collect(a.get(i), places);
            }
        }
    }
}
