package io.diskstack.filters.luks;

import java.io.IOException;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * Opening, adding and removing key slots (LUKS1 spec 4.2-4.4, LUKS2 spec 4.2-4.4). Every edit
 * writes new key material first, flushes, and only then writes the header that points at it;
 * a removal rewrites the header before wiping the material. An interrupted edit therefore
 * leaves a header that opens with every passphrase that opened it before (except the one
 * being removed).
 */
final class KeySlots {
    private KeySlots() {}

    /** The volume key, or null if no active slot opens with the passphrase. */
    static byte[] unlock(LuksHeader h, HeaderDevice dev, byte[] passphrase, ImageRef ref) throws IOException {
        for (KeySlot s : h.activeSlots()) {
            byte[] key = tryOpen(h, dev, s, passphrase, ref);
            if (key != null) {
                return key;
            }
        }
        return null;
    }

    /** The id of the first active slot that the passphrase opens, or -1. */
    static int findSlot(LuksHeader h, HeaderDevice dev, byte[] passphrase, ImageRef ref) throws IOException {
        for (KeySlot s : h.activeSlots()) {
            byte[] key = tryOpen(h, dev, s, passphrase, ref);
            if (key != null) {
                Arrays.fill(key, (byte) 0);
                return s.id();
            }
        }
        return -1;
    }

    private static byte[] tryOpen(LuksHeader h, HeaderDevice dev, KeySlot s, byte[] passphrase, ImageRef ref)
            throws IOException {
        if (s.areaOffset() + s.materialSectorsBytes() > dev.size()) {
            throw ref.error("key slot " + s.id(), "key material runs past the end of the image (" + dev.size()
                    + " bytes)");
        }
        byte[] slotKey;
        try {
            slotKey = s.kdf().derive(passphrase, s.areaCipher().keyBytes());
        } catch (IllegalStateException e) {
            throw ref.error("key slot " + s.id(), e.getMessage());
        }
        byte[] material = dev.readBytes(s.areaOffset(), s.materialSectorsBytes());
        try (SectorCipher c = s.areaCipher().newCipher(slotKey, LuksHeader.SECTOR)) {
            c.decrypt(material, 0);
        } finally {
            Arrays.fill(slotKey, (byte) 0);
        }
        byte[] candidate = AfSplitter.merge(material, s.keyBytes(), s.stripes(), s.afHash());
        Arrays.fill(material, (byte) 0);
        if (h.checkVolumeKey(s, candidate)) {
            return candidate;
        }
        Arrays.fill(candidate, (byte) 0);
        return null;
    }

    /** Encrypted, AF-split key material for a slot, padded to whole sectors. */
    static byte[] material(byte[] volumeKey, byte[] slotKey, CipherSpec areaCipher, int stripes, LuksHash afHash,
                           SecureRandom random) {
        byte[] split = AfSplitter.split(volumeKey, stripes, afHash, random);
        byte[] padded = Arrays.copyOf(split, (split.length + LuksHeader.SECTOR - 1) / LuksHeader.SECTOR
                * LuksHeader.SECTOR);
        Arrays.fill(split, (byte) 0);
        try (SectorCipher c = areaCipher.newCipher(slotKey, LuksHeader.SECTOR)) {
            c.encrypt(padded, 0);
        }
        return padded;
    }

    /**
     * Adds a passphrase in slot {@code wanted} (or the first free one if negative).
     *
     * @return the slot used
     */
    static int add(LuksHeader h, HeaderDevice dev, byte[] volumeKey, byte[] passphrase, int wanted,
                   SlotSettings settings, ImageRef ref) throws IOException {
        SecureRandom random = new SecureRandom();
        if (h instanceof Luks1Header h1) {
            if (!settings.kdfType().equals("pbkdf2")) {
                throw ref.error("kdf", "'" + settings.kdfType() + "' needs LUKS2 (LUKS1 has only pbkdf2)");
            }
            int slot = wanted;
            if (slot < 0) {
                for (int i = 0; i < Luks1Header.SLOTS && slot < 0; i++) {
                    slot = h1.isActive(i) ? -1 : i;
                }
                if (slot < 0) {
                    throw ref.error("all 8 LUKS1 key slots are in use");
                }
            } else if (slot >= Luks1Header.SLOTS) {
                throw ref.error("key slot", slot + " is out of range [0, 7]");
            } else if (h1.isActive(slot)) {
                throw ref.error("key slot", slot + " is in use");
            }
            LuksHash hash = h1.hash();
            Kdf.Pbkdf2Kdf kdf = (Kdf.Pbkdf2Kdf) SlotSettings.pbkdf2(hash, settings.iterTimeMs()).newKdf(random);
            byte[] slotKey = kdf.derive(passphrase, h1.cipher().keyBytes());
            byte[] material = material(volumeKey, slotKey, h1.cipher(), h1.slotStripes(slot), hash, random);
            Arrays.fill(slotKey, (byte) 0);
            dev.writeBytes(h1.slotOffset(slot), material);
            dev.flush();
            h1.activate(slot, kdf.iterations(), kdf.salt());
            // The whole phdr lies in the first 4 KiB block, which the file system writes whole.
            dev.writeBytes(0, h1.toBytes());
            dev.flush();
            return slot;
        }
        Luks2Header h2 = (Luks2Header) h;
        int id = wanted;
        java.util.List<Integer> used = h2.keyslotIds();
        if (id < 0) {
            for (int i = 0; i < Luks2Header.MAX_KEYSLOTS && id < 0; i++) {
                id = used.contains(i) ? -1 : i;
            }
            if (id < 0) {
                throw ref.error("all " + Luks2Header.MAX_KEYSLOTS + " LUKS2 key slots are in use");
            }
        } else if (id >= Luks2Header.MAX_KEYSLOTS) {
            throw ref.error("key slot", id + " is out of range [0, " + (Luks2Header.MAX_KEYSLOTS - 1) + "]");
        } else if (used.contains(id)) {
            throw ref.error("key slot", id + " is in use");
        }
        CipherSpec cipher = h2.cipher();
        long areaSize = ((long) cipher.keyBytes() * Luks1Header.STRIPES + 4095) / 4096 * 4096;
        long areaOffset = h2.allocateArea(areaSize);
        if (areaOffset < 0) {
            throw ref.error("LUKS2 keyslots area", "has no room for another " + areaSize + "-byte key slot");
        }
        Kdf kdf = settings.newKdf(random);
        byte[] slotKey = kdf.derive(passphrase, cipher.keyBytes());
        byte[] material = material(volumeKey, slotKey, cipher, Luks1Header.STRIPES, settings.hash(), random);
        Arrays.fill(slotKey, (byte) 0);
        dev.writeBytes(areaOffset, material);
        dev.flush();
        h2.addKeyslot(id, kdf, settings.hash(), areaOffset, areaSize);
        h2.write(dev, random);
        return id;
    }

    /** Disables a slot (cryptsetup luksKillSlot): the header first, then its material is overwritten. */
    static void kill(LuksHeader h, HeaderDevice dev, int slot, ImageRef ref) throws IOException {
        SecureRandom random = new SecureRandom();
        boolean active = h.activeSlots().stream().anyMatch(s -> s.id() == slot);
        if (!active) {
            throw ref.error("key slot", slot + " is not active");
        }
        if (h.activeSlots().size() == 1) {
            throw ref.error("key slot", slot + " is the last active one: removing it would make the image unreadable");
        }
        long areaOffset;
        long areaLength;
        if (h instanceof Luks1Header h1) {
            areaOffset = h1.slotOffset(slot);
            areaLength = ((long) h1.cipher().keyBytes() * h1.slotStripes(slot) + LuksHeader.SECTOR - 1)
                    / LuksHeader.SECTOR * LuksHeader.SECTOR;
            h1.disable(slot);
            dev.writeBytes(0, h1.toBytes());
            dev.flush();
        } else {
            Luks2Header h2 = (Luks2Header) h;
            long[] area = h2.keyslotArea(slot);
            areaOffset = area[0];
            areaLength = area[1];
            h2.removeKeyslot(slot);
            h2.write(dev, random);
        }
        byte[] noise = new byte[(int) Math.min(areaLength, 1 << 20)];
        for (long done = 0; done < areaLength; done += noise.length) {
            random.nextBytes(noise);
            int n = (int) Math.min(noise.length, areaLength - done);
            dev.write(areaOffset + done, java.nio.ByteBuffer.wrap(noise, 0, n));
        }
        dev.flush();
    }
}
