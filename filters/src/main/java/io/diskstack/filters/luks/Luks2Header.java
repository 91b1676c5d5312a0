package io.diskstack.filters.luks;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A LUKS2 header (LUKS2 spec section 2): two copies of a 4096-byte binary header plus a JSON
 * area, each checksummed; the valid copy with the higher seqid wins. The JSON tree is kept
 * whole, so edits preserve what we do not interpret (tokens, flags, labels).
 */
final class Luks2Header extends LuksHeader {
    static final long[] HDR_SIZES = {16L << 10, 32L << 10, 64L << 10, 128L << 10, 256L << 10, 512L << 10,
        1L << 20, 2L << 20, 4L << 20};
    static final byte[] MAGIC_2ND = {'S', 'K', 'U', 'L', (byte) 0xBA, (byte) 0xBE};
    static final int MAX_KEYSLOTS = 32;
    /** The largest keyslots area we accept (cryptsetup's limit is 128 MiB). */
    static final long MAX_KEYSLOTS_SIZE = 1L << 30;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ImageRef ref;
    private final long hdrSize;
    private final byte[] template;
    private long seqid;
    private ObjectNode json;
    // Derived from the JSON by derive():
    private CipherSpec cipher;
    private int sectorSize;
    private long offset;
    private long fixedSize;
    private long ivTweak;
    private long keyslotsSize;
    private String segmentId;
    private List<KeySlot> slots;
    private final Map<Integer, JsonNode> digestOfSlot = new TreeMap<>();

    private Luks2Header(ImageRef ref, long hdrSize, byte[] template, long seqid, ObjectNode json) {
        this.ref = ref;
        this.hdrSize = hdrSize;
        this.template = template;
        this.seqid = seqid;
        this.json = json;
        derive();
    }

    /** One checked copy of the header area. */
    private record Copy(long offset, long hdrSize, long seqid, byte[] area) {}

    static Luks2Header read(HeaderDevice dev, byte[] first, ImageRef ref) throws IOException {
        long size = dev.size();
        String[] why = new String[1];
        Copy primary = check(dev, 0, first, size, why);
        String primaryProblem = why[0];
        Copy secondary = null;
        if (primary != null) {
            secondary = checkAt(dev, primary.hdrSize, size, why);
        } else {
            for (long at : HDR_SIZES) {
                secondary = checkAt(dev, at, size, why);
                if (secondary != null) {
                    break;
                }
            }
        }
        Copy best = primary;
        if (best == null || (secondary != null && secondary.seqid > best.seqid)) {
            best = secondary;
        }
        if (best == null) {
            throw ref.error(primaryProblem + " in both header copies");
        }
        byte[] area = best.area;
        int end = 4096;
        while (end < area.length && area[end] != 0) {
            end++;
        }
        if (end == area.length) {
            throw ref.error("LUKS2 JSON area", "is not NUL-terminated");
        }
        String text = new String(area, 4096, end - 4096, StandardCharsets.UTF_8);
        JsonNode tree;
        try {
            tree = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw ref.error("LUKS2 JSON area", "is malformed: " + oneLine(e.getOriginalMessage()));
        }
        if (tree == null || !tree.isObject()) {
            throw ref.error("LUKS2 JSON area", "is not a JSON object");
        }
        return new Luks2Header(ref, best.hdrSize, Arrays.copyOf(area, 4096), best.seqid, (ObjectNode) tree);
    }

    private static String oneLine(String s) {
        String t = s == null ? "" : s.replaceAll("\\s+", " ").trim();
        return t.length() > 120 ? t.substring(0, 120) + "…" : t;
    }

    private static Copy checkAt(HeaderDevice dev, long at, long size, String[] why) throws IOException {
        if (at + 4096 > size) {
            return null;
        }
        String keep = why[0];
        Copy c = check(dev, at, dev.readBytes(at, 4096), size, why);
        if (c == null) {
            why[0] = keep;
        }
        return c;
    }

    /** Checks one copy: magic, version, size, offset, checksum. Null with a reason if bad. */
    private static Copy check(HeaderDevice dev, long at, byte[] bin, long size, String[] why) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bin);
        byte[] magic = at == 0 ? MAGIC : MAGIC_2ND;
        if (!Arrays.equals(bin, 0, 6, magic, 0, 6) || b.getShort(6) != 2) {
            why[0] = "LUKS2 'magic' or 'version' is wrong";
            return null;
        }
        long hdrSize = b.getLong(8);
        if (Arrays.stream(HDR_SIZES).noneMatch(s -> s == hdrSize)) {
            why[0] = "LUKS2 'hdr_size' " + hdrSize + " is not a valid size (16 KiB … 4 MiB)";
            return null;
        }
        if (b.getLong(256) != at) {
            why[0] = "LUKS2 'hdr_offset' " + b.getLong(256) + " does not match the header's position " + at;
            return null;
        }
        if (at + hdrSize > size || (at == 0 && 2 * hdrSize > size)) {
            why[0] = "LUKS2 'hdr_size' " + hdrSize + " runs past the end of the image (" + size + " bytes)";
            return null;
        }
        String alg = Bytes.cString(bin, 72, 32);
        LuksHash csum = alg == null ? null : LuksHash.byName(alg);
        if (csum == null) {
            why[0] = "LUKS2 'csum_alg' '" + alg + "' is not supported";
            return null;
        }
        byte[] area = new byte[(int) hdrSize];
        System.arraycopy(bin, 0, area, 0, 4096);
        dev.read(at + 4096, ByteBuffer.wrap(area, 4096, area.length - 4096));
        byte[] stored = Arrays.copyOfRange(area, 448, 448 + csum.digestLength);
        Arrays.fill(area, 448, 448 + 64, (byte) 0);
        byte[] computed = csum.newDigest().digest(area);
        System.arraycopy(bin, 448, area, 448, 64);
        if (!MessageDigest.isEqual(stored, computed)) {
            why[0] = "LUKS2 'csum' does not match the header (corrupt header)";
            return null;
        }
        return new Copy(at, hdrSize, b.getLong(16), area);
    }

    // ---- the JSON model ----

    private void derive() {
        ObjectNode config = object(json, "config", "config");
        long jsonSize = u64(config, "json_size", "config.json_size");
        if (jsonSize != hdrSize - 4096) {
            throw ref.error("LUKS2 'config.json_size'", jsonSize + " does not match hdr_size " + hdrSize);
        }
        keyslotsSize = u64(config, "keyslots_size", "config.keyslots_size");
        if (keyslotsSize > MAX_KEYSLOTS_SIZE || keyslotsSize % 4096 != 0) {
            throw ref.error("LUKS2 'config.keyslots_size'", keyslotsSize + " is not a multiple of 4096 up to "
                    + MAX_KEYSLOTS_SIZE);
        }
        JsonNode req = config.path("requirements").path("mandatory");
        if (req.isArray() && req.size() > 0) {
            throw ref.error("LUKS2 'config.requirements.mandatory'", req.get(0).asText()
                    + " is not supported (reencryption in progress?)");
        }
        ObjectNode segments = object(json, "segments", "segments");
        object(json, "tokens", "tokens");
        if (segments.size() != 1) {
            throw ref.error("LUKS2 'segments'", "has " + segments.size()
                    + " segments: only one crypt segment is supported (reencryption in progress?)");
        }
        segmentId = segments.fieldNames().next();
        String sp = "segments." + segmentId;
        JsonNode seg = segments.get(segmentId);
        if (!seg.isObject()) {
            throw ref.error("LUKS2 '" + sp + "'", "is not an object");
        }
        String type = text(seg, "type", sp + ".type");
        if (!type.equals("crypt")) {
            throw ref.error("LUKS2 '" + sp + ".type'", "'" + type + "' is not supported (only crypt)");
        }
        if (seg.has("integrity")) {
            throw ref.error("LUKS2 '" + sp + ".integrity'", "is not supported");
        }
        offset = u64(seg, "offset", sp + ".offset");
        JsonNode sizeNode = seg.get("size");
        fixedSize = sizeNode != null && sizeNode.isTextual() && sizeNode.asText().equals("dynamic") ? -1
                : u64(seg, "size", sp + ".size");
        ivTweak = u64(seg, "iv_tweak", sp + ".iv_tweak");
        sectorSize = (int) integer(seg, "sector_size", sp + ".sector_size");
        if (sectorSize != 512 && sectorSize != 1024 && sectorSize != 2048 && sectorSize != 4096) {
            throw ref.error("LUKS2 '" + sp + ".sector_size'", sectorSize + " is not 512, 1024, 2048 or 4096");
        }
        if (offset % sectorSize != 0) {
            throw ref.error("LUKS2 '" + sp + ".offset'", offset + " is not a multiple of the sector size");
        }
        String encryption = text(seg, "encryption", sp + ".encryption");

        ObjectNode digests = object(json, "digests", "digests");
        digestOfSlot.clear();
        for (Iterator<Map.Entry<String, JsonNode>> it = digests.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String dp = "digests." + e.getKey();
            JsonNode d = e.getValue();
            if (!contains(d.path("segments"), segmentId)) {
                continue;
            }
            if (!text(d, "type", dp + ".type").equals("pbkdf2")) {
                throw ref.error("LUKS2 '" + dp + ".type'", "'" + d.path("type").asText() + "' is not supported");
            }
            LuksHash digestHash = hash(d, "hash", dp + ".hash");
            long iterations = integer(d, "iterations", dp + ".iterations");
            if (iterations < 1 || iterations > 0xFFFFFFFFL) {
                throw ref.error("LUKS2 '" + dp + ".iterations'", iterations + " is out of range [1, 2^32-1]");
            }
            // Every unlock attempt runs the digest: a hostile count would hang the open.
            String slow = KdfCost.pbkdf2(digestHash, iterations);
            if (slow != null) {
                throw ref.error("LUKS2 '" + dp + ".iterations'", slow);
            }
            if (base64(d, "salt", dp + ".salt").length == 0) {
                throw ref.error("LUKS2 '" + dp + ".salt'", "is empty");
            }
            int digestLength = base64(d, "digest", dp + ".digest").length;
            if (digestLength < 16 || digestLength > 64) {
                throw ref.error("LUKS2 '" + dp + ".digest'", "is " + digestLength + " bytes (16 to 64 expected)");
            }
            for (JsonNode k : d.path("keyslots")) {
                digestOfSlot.put(Integer.parseInt(k.asText("-1").matches("[0-9]{1,3}") ? k.asText() : "-1"), d);
            }
        }

        ObjectNode keyslots = object(json, "keyslots", "keyslots");
        List<KeySlot> found = new ArrayList<>();
        int volumeKeyBytes = -1;
        for (Iterator<Map.Entry<String, JsonNode>> it = keyslots.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String kp = "keyslots." + e.getKey();
            if (!e.getKey().matches("[0-9]{1,3}")) {
                throw ref.error("LUKS2 '" + kp + "'", "is not a keyslot number");
            }
            int id = Integer.parseInt(e.getKey());
            JsonNode k = e.getValue();
            if (!text(k, "type", kp + ".type").equals("luks2") || !digestOfSlot.containsKey(id)) {
                continue;
            }
            KeySlot slot = keySlot(id, k, kp);
            if (volumeKeyBytes >= 0 && slot.keyBytes() != volumeKeyBytes) {
                throw ref.error("LUKS2 '" + kp + ".key_size'", slot.keyBytes() + " differs from other key slots ("
                        + volumeKeyBytes + ")");
            }
            volumeKeyBytes = slot.keyBytes();
            found.add(slot);
        }
        if (volumeKeyBytes < 0) {
            throw ref.error("LUKS2 'keyslots'", "has no key slot for segment " + segmentId);
        }
        try {
            cipher = CipherSpec.parseLuks2(encryption, volumeKeyBytes);
        } catch (IllegalArgumentException ex) {
            throw ref.error("LUKS2 '" + sp + ".encryption'", ex.getMessage());
        }
        found.removeIf(s -> s.priority() == 0);
        found.sort(Comparator.comparingInt((KeySlot s) -> -s.priority()).thenComparingInt(KeySlot::id));
        slots = found;
    }

    private KeySlot keySlot(int id, JsonNode k, String kp) {
        int keyBytes = (int) integer(k, "key_size", kp + ".key_size");
        if (keyBytes < 1 || keyBytes > 512) {
            throw ref.error("LUKS2 '" + kp + ".key_size'", keyBytes + " is out of range");
        }
        JsonNode area = object(k, "area", kp + ".area");
        if (!text(area, "type", kp + ".area.type").equals("raw")) {
            throw ref.error("LUKS2 '" + kp + ".area.type'", "'" + area.path("type").asText() + "' is not supported");
        }
        long areaOffset = u64(area, "offset", kp + ".area.offset");
        long areaSize = u64(area, "size", kp + ".area.size");
        int areaKeyBytes = (int) integer(area, "key_size", kp + ".area.key_size");
        CipherSpec areaCipher;
        try {
            areaCipher = CipherSpec.parseLuks2(text(area, "encryption", kp + ".area.encryption"), areaKeyBytes);
        } catch (IllegalArgumentException ex) {
            throw ref.error("LUKS2 '" + kp + ".area.encryption'", ex.getMessage());
        }
        JsonNode af = object(k, "af", kp + ".af");
        if (!text(af, "type", kp + ".af.type").equals("luks1")) {
            throw ref.error("LUKS2 '" + kp + ".af.type'", "'" + af.path("type").asText() + "' is not supported");
        }
        long stripes = integer(af, "stripes", kp + ".af.stripes");
        if (stripes < 1 || stripes > Luks1Header.MAX_STRIPES) {
            throw ref.error("LUKS2 '" + kp + ".af.stripes'", stripes + " is out of range");
        }
        LuksHash afHash = hash(af, "hash", kp + ".af.hash");
        long areaEnd = 2 * hdrSize + keyslotsSize;
        long material = ((long) keyBytes * stripes + SECTOR - 1) / SECTOR * SECTOR;
        if (areaOffset < 2 * hdrSize || areaOffset > areaEnd || areaSize > areaEnd - areaOffset
                || material > areaSize) {
            throw ref.error("LUKS2 '" + kp + ".area'", "offset " + areaOffset + " size " + areaSize
                    + " is outside the keyslots area or too small for the key material");
        }
        JsonNode kdf = object(k, "kdf", kp + ".kdf");
        String kdfType = text(kdf, "type", kp + ".kdf.type");
        Kdf derived = switch (kdfType) {
            case "pbkdf2" -> {
                long it = integer(kdf, "iterations", kp + ".kdf.iterations");
                if (it < 1 || it > 0xFFFFFFFFL) {
                    throw ref.error("LUKS2 '" + kp + ".kdf.iterations'", it + " is out of range [1, 2^32-1]");
                }
                yield new Kdf.Pbkdf2Kdf(hash(kdf, "hash", kp + ".kdf.hash"), it, base64(kdf, "salt", kp + ".kdf.salt"));
            }
            case "argon2i", "argon2id" -> {
                long time = integer(kdf, "time", kp + ".kdf.time");
                long memory = integer(kdf, "memory", kp + ".kdf.memory");
                long cpus = integer(kdf, "cpus", kp + ".kdf.cpus");
                if (time < 1 || time > 1 << 20) {
                    throw ref.error("LUKS2 '" + kp + ".kdf.time'", time + " is out of range");
                }
                if (cpus < 1 || cpus > 64) {
                    throw ref.error("LUKS2 '" + kp + ".kdf.cpus'", cpus + " is out of range [1, 64]");
                }
                if (memory < 8 * cpus || memory > Kdf.MAX_ARGON2_MEMORY_KIB) {
                    throw ref.error("LUKS2 '" + kp + ".kdf.memory'", memory + " KiB is out of range [" + 8 * cpus
                            + ", " + Kdf.MAX_ARGON2_MEMORY_KIB + "]");
                }
                if (time * memory > Kdf.MAX_ARGON2_WORK_KIB) {
                    throw ref.error("LUKS2 '" + kp + ".kdf.time'", time + " passes over " + memory
                            + " KiB is absurd (more than " + (Kdf.MAX_ARGON2_WORK_KIB >> 20) + " GiB of work)");
                }
                yield new Kdf.Argon2Kdf(kdfType.equals("argon2id"), (int) time, (int) memory, (int) cpus,
                        base64(kdf, "salt", kp + ".kdf.salt"));
            }
            default -> new Kdf.Unsupported(kdfType, "LUKS2 '" + kp + ".kdf.type' '" + kdfType
                    + "' is not supported (pbkdf2, argon2i, argon2id)");
        };
        int priority = k.has("priority") ? (int) integer(k, "priority", kp + ".priority") : 1;
        return new KeySlot(id, derived, areaCipher, areaOffset, areaSize, keyBytes, (int) stripes, afHash, priority);
    }

    // ---- typed field access with one-line errors ----

    private ObjectNode object(JsonNode parent, String field, String path) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isObject()) {
            throw ref.error("LUKS2 '" + path + "'", n == null ? "is missing" : "is not an object");
        }
        return (ObjectNode) n;
    }

    private String text(JsonNode parent, String field, String path) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isTextual()) {
            throw ref.error("LUKS2 '" + path + "'", n == null ? "is missing" : "is not a string");
        }
        return n.asText();
    }

    /** A string-uint64 (decimal string); plain JSON numbers are accepted too. */
    private long u64(JsonNode parent, String field, String path) {
        JsonNode n = parent.get(field);
        if (n != null && n.isIntegralNumber() && n.canConvertToLong() && n.asLong() >= 0) {
            return n.asLong();
        }
        if (n != null && n.isTextual() && n.asText().matches("[0-9]{1,19}")) {
            try {
                return Long.parseLong(n.asText());
            } catch (NumberFormatException e) {
                // falls through to the error
            }
        }
        throw ref.error("LUKS2 '" + path + "'", n == null ? "is missing" : "value " + n + " is not an unsigned 64-bit number");
    }

    private long integer(JsonNode parent, String field, String path) {
        JsonNode n = parent.get(field);
        if (n == null || !n.isIntegralNumber() || !n.canConvertToLong()) {
            throw ref.error("LUKS2 '" + path + "'", n == null ? "is missing" : "value " + n + " is not an integer");
        }
        return n.asLong();
    }

    private byte[] base64(JsonNode parent, String field, String path) {
        String s = text(parent, field, path);
        try {
            return Base64.getDecoder().decode(s.replaceAll("\\s", ""));
        } catch (IllegalArgumentException e) {
            throw ref.error("LUKS2 '" + path + "'", "is not valid base64");
        }
    }

    private LuksHash hash(JsonNode parent, String field, String path) {
        String s = text(parent, field, path);
        LuksHash h = LuksHash.byName(s);
        if (h == null) {
            throw ref.error("LUKS2 '" + path + "'", "'" + s + "' is not supported (supported: "
                    + LuksHash.supportedNames() + ")");
        }
        return h;
    }

    private static boolean contains(JsonNode array, String value) {
        for (JsonNode n : array) {
            if (n.asText().equals(value)) {
                return true;
            }
        }
        return false;
    }

    // ---- LuksHeader ----

    @Override
    int version() {
        return 2;
    }

    @Override
    String uuid() {
        String u = Bytes.cString(template, 168, 40);
        return u == null ? "" : u;
    }

    @Override
    CipherSpec cipher() {
        return cipher;
    }

    @Override
    int sectorSize() {
        return sectorSize;
    }

    @Override
    long payloadOffset() {
        return offset;
    }

    @Override
    long fixedSize() {
        return fixedSize;
    }

    @Override
    long ivTweak() {
        return ivTweak;
    }

    @Override
    long metadataSize() {
        return 2 * hdrSize + keyslotsSize;
    }

    @Override
    List<KeySlot> activeSlots() {
        return slots;
    }

    @Override
    boolean checkVolumeKey(KeySlot slot, byte[] key) {
        JsonNode d = digestOfSlot.get(slot.id());
        if (d == null) {
            return false;
        }
        byte[] expected = base64(d, "digest", "digests.digest");
        byte[] salt = base64(d, "salt", "digests.salt");
        byte[] got = Pbkdf2.derive(hash(d, "hash", "digests.hash"), key, salt, d.get("iterations").asLong(),
                expected.length);
        return MessageDigest.isEqual(expected, got);
    }

    // ---- editing (key slots) and writing ----

    /** Every keyslot id in use, of any type. */
    List<Integer> keyslotIds() {
        List<Integer> ids = new ArrayList<>();
        json.get("keyslots").fieldNames().forEachRemaining(k -> ids.add(Integer.parseInt(k)));
        ids.sort(null);
        return ids;
    }

    /** A free place for {@code length} bytes of key material in the keyslots area, or -1. */
    long allocateArea(long length) {
        long start = 2 * hdrSize;
        long end = start + keyslotsSize;
        List<long[]> used = new ArrayList<>();
        for (JsonNode k : json.get("keyslots")) {
            JsonNode a = k.path("area");
            used.add(new long[] {a.path("offset").asLong(), a.path("offset").asLong() + a.path("size").asLong()});
        }
        used.sort(Comparator.comparingLong(a -> a[0]));
        long candidate = start;
        for (long[] u : used) {
            if (candidate + length <= u[0]) {
                break;
            }
            candidate = Math.max(candidate, (u[1] + 4095) / 4096 * 4096);
        }
        return candidate + length <= end ? candidate : -1;
    }

    /** Adds a luks2 keyslot bound to the volume key digest. */
    void addKeyslot(int id, Kdf kdf, LuksHash afHash, long areaOffset, long areaSize) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode k = f.objectNode();
        k.put("type", "luks2");
        k.put("key_size", cipher.keyBytes());
        ObjectNode af = k.putObject("af");
        af.put("type", "luks1");
        af.put("stripes", Luks1Header.STRIPES);
        af.put("hash", afHash.luksName);
        ObjectNode area = k.putObject("area");
        area.put("type", "raw");
        area.put("offset", Long.toString(areaOffset));
        area.put("size", Long.toString(areaSize));
        area.put("encryption", cipher.luks2Encryption());
        area.put("key_size", cipher.keyBytes());
        k.set("kdf", kdfJson(kdf));
        ((ObjectNode) json.get("keyslots")).set(Integer.toString(id), k);
        JsonNode digest = volumeKeyDigest();
        ((ArrayNode) digest.get("keyslots")).add(Integer.toString(id));
        derive();
    }

    /** Removes a keyslot and every reference to it (digests, tokens). */
    void removeKeyslot(int id) {
        String key = Integer.toString(id);
        ((ObjectNode) json.get("keyslots")).remove(key);
        for (String group : new String[] {"digests", "tokens"}) {
            for (JsonNode n : json.get(group)) {
                JsonNode arr = n.get("keyslots");
                if (arr instanceof ArrayNode a) {
                    for (int i = a.size() - 1; i >= 0; i--) {
                        if (a.get(i).asText().equals(key)) {
                            a.remove(i);
                        }
                    }
                }
            }
        }
        derive();
    }

    /** The area of a keyslot of any type: {offset, size}, or null. */
    long[] keyslotArea(int id) {
        JsonNode k = json.get("keyslots").get(Integer.toString(id));
        if (k == null) {
            return null;
        }
        return new long[] {k.path("area").path("offset").asLong(), k.path("area").path("size").asLong()};
    }

    private JsonNode volumeKeyDigest() {
        for (JsonNode d : json.get("digests")) {
            if (contains(d.path("segments"), segmentId)) {
                return d;
            }
        }
        throw ref.error("LUKS2 'digests'", "has no digest for segment " + segmentId);
    }

    static ObjectNode kdfJson(Kdf kdf) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("type", kdf.type());
        if (kdf instanceof Kdf.Pbkdf2Kdf p) {
            o.put("hash", p.hash().luksName);
            o.put("iterations", p.iterations());
            o.put("salt", Base64.getEncoder().encodeToString(p.salt()));
        } else if (kdf instanceof Kdf.Argon2Kdf a) {
            o.put("time", a.time());
            o.put("memory", a.memoryKiB());
            o.put("cpus", a.cpus());
            o.put("salt", Base64.getEncoder().encodeToString(a.salt()));
        }
        return o;
    }

    /**
     * A new header with one crypt segment at {@code dataOffset} and no key slots yet: cryptsetup's
     * layout (16 KiB header copies, key slots up to the data).
     */
    static Luks2Header create(ImageRef ref, CipherSpec cipher, int sectorSize, String uuid, long dataOffset,
                              LuksHash digestHash, long digestIterations, byte[] digestSalt, byte[] digest,
                              Kdf firstKdf, LuksHash afHash, long firstArea, long firstAreaSize) {
        long hdrSize = HDR_SIZES[0];
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode root = f.objectNode();
        root.putObject("keyslots");
        root.putObject("tokens");
        ObjectNode seg = root.putObject("segments").putObject("0");
        seg.put("type", "crypt");
        seg.put("offset", Long.toString(dataOffset));
        seg.put("size", "dynamic");
        seg.put("iv_tweak", "0");
        seg.put("encryption", cipher.luks2Encryption());
        seg.put("sector_size", sectorSize);
        ObjectNode d = root.putObject("digests").putObject("0");
        d.put("type", "pbkdf2");
        d.putArray("keyslots");
        d.putArray("segments").add("0");
        d.put("hash", digestHash.luksName);
        d.put("iterations", digestIterations);
        d.put("salt", Base64.getEncoder().encodeToString(digestSalt));
        d.put("digest", Base64.getEncoder().encodeToString(digest));
        ObjectNode config = root.putObject("config");
        config.put("json_size", Long.toString(hdrSize - 4096));
        config.put("keyslots_size", Long.toString(dataOffset - 2 * hdrSize));
        byte[] template = new byte[4096];
        Bytes.putCString(template, 72, 32, "sha256");
        Bytes.putCString(template, 168, 40, uuid);
        // derive() needs a bound key slot to learn the key size: add the first one directly.
        ObjectNode k = ((ObjectNode) root.get("keyslots")).putObject("0");
        k.put("type", "luks2");
        k.put("key_size", cipher.keyBytes());
        ObjectNode af = k.putObject("af");
        af.put("type", "luks1");
        af.put("stripes", Luks1Header.STRIPES);
        af.put("hash", afHash.luksName);
        ObjectNode area = k.putObject("area");
        area.put("type", "raw");
        area.put("offset", Long.toString(firstArea));
        area.put("size", Long.toString(firstAreaSize));
        area.put("encryption", cipher.luks2Encryption());
        area.put("key_size", cipher.keyBytes());
        k.set("kdf", kdfJson(firstKdf));
        ((ArrayNode) d.get("keyslots")).add("0");
        return new Luks2Header(ref, hdrSize, template, 0, root);
    }

    /**
     * Writes both copies with the next seqid: the secondary first, then the primary, with a
     * flush after each, so one valid copy exists at every moment.
     */
    void write(HeaderDevice dev, SecureRandom random) throws IOException {
        derive();
        seqid++;
        dev.writeBytes(hdrSize, area(hdrSize, random));
        dev.flush();
        dev.writeBytes(0, area(0, random));
        dev.flush();
    }

    private byte[] area(long at, SecureRandom random) {
        byte[] text;
        try {
            text = JSON.writeValueAsBytes(json);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("LUKS2 JSON", e);
        }
        if (text.length >= hdrSize - 4096) {
            throw ref.error("LUKS2 JSON area", "would need " + text.length + " bytes, more than its "
                    + (hdrSize - 4096));
        }
        byte[] a = new byte[(int) hdrSize];
        ByteBuffer b = ByteBuffer.wrap(a);
        System.arraycopy(at == 0 ? MAGIC : MAGIC_2ND, 0, a, 0, 6);
        b.putShort(6, (short) 2);
        b.putLong(8, hdrSize);
        b.putLong(16, seqid);
        System.arraycopy(template, 24, a, 24, 48);   // label
        System.arraycopy(template, 72, a, 72, 32);   // csum_alg
        byte[] salt = new byte[64];
        random.nextBytes(salt);
        System.arraycopy(salt, 0, a, 104, 64);
        System.arraycopy(template, 168, a, 168, 40); // uuid
        System.arraycopy(template, 208, a, 208, 48); // subsystem
        b.putLong(256, at);
        System.arraycopy(text, 0, a, 4096, text.length);
        String alg = Bytes.cString(template, 72, 32);
        LuksHash csum = LuksHash.byName(alg == null ? "sha256" : alg);
        byte[] digest = csum.newDigest().digest(a);
        System.arraycopy(digest, 0, a, 448, digest.length);
        return a;
    }
}
