package io.diskstack.filters.luks;

import io.diskstack.core.info.ImageFacts;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The {@code format-specific} part of {@code diskstack info} for a LUKS volume, from its header
 * alone (no key): QEMU's fields for LUKS1 ({@code cipher-alg}, {@code cipher-mode},
 * {@code ivgen-alg}, {@code hash-alg}, {@code payload-offset}, {@code master-key-iters},
 * {@code uuid}, {@code slots}); for LUKS2, which QEMU does not open, the same names where they
 * apply, plus {@code version}, {@code sector-size} and each active slot's KDF. Never salts,
 * digests or key material.
 */
final class LuksInfo {
    private LuksInfo() {}

    static void describe(LuksHeader h, ImageFacts facts) {
        facts.encrypted().formatSpecific("luks", h instanceof Luks1Header l1 ? luks1(l1) : luks2(h));
    }

    private static Map<String, Object> common(LuksHeader h) {
        CipherSpec c = h.cipher();
        Map<String, Object> m = new LinkedHashMap<>();
        int aesBits = (c.mode() == CipherSpec.Mode.XTS ? c.keyBytes() / 2 : c.keyBytes()) * 8;
        m.put("cipher-alg", CipherSpec.CIPHER + "-" + aesBits);
        m.put("cipher-mode", c.mode().name().toLowerCase(Locale.ROOT));
        if (c.ivMode() != CipherSpec.IvMode.NONE) {
            m.put("ivgen-alg", c.ivMode().name().toLowerCase(Locale.ROOT));
        }
        if (c.ivHash() != null) {
            m.put("ivgen-hash-alg", c.ivHash().luksName);
        }
        return m;
    }

    /** In the order qemu-img 7.2 prints them, so the human outputs compare line by line. */
    private static Map<String, Object> luks1(Luks1Header h) {
        Map<String, Object> c = common(h);
        Map<String, Object> m = new LinkedHashMap<>();
        copy(c, m, "ivgen-alg");
        m.put("hash-alg", h.hash().luksName);
        copy(c, m, "cipher-alg");
        m.put("uuid", h.uuid());
        copy(c, m, "ivgen-hash-alg");
        copy(c, m, "cipher-mode");
        List<Map<String, Object>> slots = new ArrayList<>();
        for (int i = 0; i < Luks1Header.SLOTS; i++) {
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("active", h.isActive(i));
            if (h.isActive(i)) {
                s.put("iters", h.slot(i).kdf() instanceof Kdf.Pbkdf2Kdf p ? p.iterations() : 0);
            }
            s.put("key-offset", h.slotOffset(i));
            if (h.isActive(i)) {
                s.put("stripes", h.slotStripes(i));
            }
            slots.add(s);
        }
        m.put("slots", slots);
        m.put("payload-offset", h.payloadOffset());
        m.put("master-key-iters", Integer.toUnsignedLong(ByteBuffer.wrap(h.toBytes()).getInt(164)));
        return m;
    }

    private static void copy(Map<String, Object> from, Map<String, Object> to, String key) {
        if (from.containsKey(key)) {
            to.put(key, from.get(key));
        }
    }

    private static Map<String, Object> luks2(LuksHeader h) {
        Map<String, Object> m = common(h);
        m.put("version", h.version());
        m.put("sector-size", h.sectorSize());
        m.put("payload-offset", h.payloadOffset());
        m.put("uuid", h.uuid());
        List<Map<String, Object>> slots = new ArrayList<>();
        for (KeySlot k : h.activeSlots()) {
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("id", k.id());
            s.put("active", true);
            if (k.kdf() instanceof Kdf.Pbkdf2Kdf p) {
                s.put("kdf", "pbkdf2");
                s.put("hash", p.hash().luksName);
                s.put("iters", p.iterations());
            } else if (k.kdf() instanceof Kdf.Argon2Kdf a) {
                s.put("kdf", a.id() ? "argon2id" : "argon2i");
                s.put("time", a.time());
                s.put("memory", a.memoryKiB());
                s.put("cpus", a.cpus());
            }
            s.put("stripes", k.stripes());
            s.put("key-offset", k.areaOffset());
            slots.add(s);
        }
        m.put("slots", slots);
        return m;
    }
}
