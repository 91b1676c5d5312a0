package io.diskstack.filters.luks;

import java.io.IOException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.logging.Logger;

/**
 * Opening, adding and removing key slots (LUKS1 spec 4.2-4.4, LUKS2 spec 4.2-4.4). Every edit
 * writes new key material first, flushes, and only then writes the header that points at it;
 * a removal rewrites the header before wiping the material. An interrupted edit therefore
 * leaves a header that opens with every passphrase that opened it before (except the one
 * being removed).
 */
final class KeySlots {
    private static final Logger LOG = Logger.getLogger(KeySlots.class.getName());

    private KeySlots() {}

    /**
     * What trying the key slots gave: the volume key and the slot that opened (both null if
     * none did), how many slots were tried, and the slots skipped because their key derivation
     * cannot run here (too much memory, too slow, unsupported), with why.
     */
    record Unlock(byte[] key, KeySlot slot, int tried, List<String> skipped) {
        /** The one-line reason nothing opened, naming the secret (never its value). */
        String failure(String secretId) {
            if (tried == 0 && !skipped.isEmpty()) {
                return "no key slot could be tried with secret '" + secretId + "': " + String.join("; ", skipped);
            }
            return "no key slot opens with secret '" + secretId + "'"
                    + (skipped.isEmpty() ? "" : " (not tried: " + String.join("; ", skipped) + ")");
        }
    }

    /**
     * Tries the active slots one by one. A slot whose key derivation cannot run here is
     * skipped (and named in {@link Unlock#failure} if no other slot opens).
     */
    static Unlock open(LuksHeader h, HeaderDevice dev, byte[] passphrase, ImageRef ref) throws IOException {
        List<String> skipped = new ArrayList<>();
        int tried = 0;
        for (KeySlot s : h.activeSlots()) {
            String why = s.kdf().unusable();
            byte[] key = null;
            if (why == null) {
                try {
                    key = tryOpen(h, dev, s, passphrase, ref);
                    tried++;
                } catch (IllegalStateException e) {
                    why = e.getMessage();
                }
            }
            if (why != null) {
                String note = "key slot " + s.id() + ": " + why;
                LOG.fine(() -> ref.file() + ": skipping " + note);
                skipped.add(note);
                continue;
            }
            if (key != null) {
                return new Unlock(key, s, tried, skipped);
            }
        }
        return new Unlock(null, null, tried, skipped);
    }

    /** The volume key, or null if no active slot opens with the passphrase. */
    static byte[] unlock(LuksHeader h, HeaderDevice dev, byte[] passphrase, ImageRef ref) throws IOException {
        return open(h, dev, passphrase, ref).key();
    }

    /** The first active slot that the passphrase opens, or null. */
    static KeySlot findSlot(LuksHeader h, HeaderDevice dev, byte[] passphrase, ImageRef ref) throws IOException {
        Unlock u = open(h, dev, passphrase, ref);
        if (u.key() != null) {
            Arrays.fill(u.key(), (byte) 0);
        }
        return u.slot();
    }

    /**
     * The volume key if this slot opens with the passphrase, else null.
     *
     * @throws IllegalStateException if its key derivation cannot run here
     */
    private static byte[] tryOpen(LuksHeader h, HeaderDevice dev, KeySlot s, byte[] passphrase, ImageRef ref)
            throws IOException {
        if (s.areaOffset() > dev.size() - s.materialSectorsBytes()) {
            throw ref.error("key slot " + s.id(), "key material runs past the end of the image (" + dev.size()
                    + " bytes)");
        }
        byte[] slotKey = s.kdf().derive(passphrase, s.areaCipher().keyBytes());
        byte[] material = dev.readBytes(s.areaOffset(), s.materialSectorsBytes());
        byte[] candidate;
        try (SectorCipher c = s.areaCipher().newCipher(slotKey, LuksHeader.SECTOR)) {
            c.decrypt(material, 0);
            candidate = AfSplitter.merge(material, s.keyBytes(), s.stripes(), s.afHash());
        } finally {
            Arrays.fill(slotKey, (byte) 0);
            Arrays.fill(material, (byte) 0);
        }
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
        boolean encrypted = false;
        try (SectorCipher c = areaCipher.newCipher(slotKey, LuksHeader.SECTOR)) {
            c.encrypt(padded, 0);
            encrypted = true;
        } finally {
            if (!encrypted) {
                Arrays.fill(padded, (byte) 0); // the AF-split key in clear
            }
        }
        return padded;
    }

    /**
     * A new slot's key, derived from its passphrase: the slow part of adding a slot, which needs
     * no lock (the cipher and hash it depends on never change). {@link #close} wipes the key.
     */
    static final class NewSlot implements AutoCloseable {
        final Kdf kdf;
        final LuksHash afHash;
        final byte[] slotKey;
        final String uuid;

        private NewSlot(Kdf kdf, LuksHash afHash, byte[] slotKey, String uuid) {
            this.kdf = kdf;
            this.afHash = afHash;
            this.slotKey = slotKey;
            this.uuid = uuid;
        }

        @Override
        public void close() {
            Arrays.fill(slotKey, (byte) 0);
        }
    }

    /** Derives the key of a new slot protected by {@code passphrase} (no I/O). */
    static NewSlot prepare(LuksHeader h, byte[] passphrase, SlotSettings settings, ImageRef ref) {
        SecureRandom random = new SecureRandom();
        if (h instanceof Luks1Header h1) {
            if (!settings.kdfType().equals("pbkdf2")) {
                throw ref.error("kdf", "'" + settings.kdfType() + "' needs LUKS2 (LUKS1 has only pbkdf2)");
            }
            Kdf kdf = SlotSettings.pbkdf2(h1.hash(), settings.iterTimeMs()).newKdf(random);
            return new NewSlot(kdf, h1.hash(), kdf.derive(passphrase, h1.cipher().keyBytes()), h.uuid());
        }
        Kdf kdf = settings.newKdf(random);
        return new NewSlot(kdf, settings.hash(), kdf.derive(passphrase, h.cipher().keyBytes()), h.uuid());
    }

    /**
     * Adds a passphrase in slot {@code wanted} (or the first free one if negative).
     *
     * @return the slot used
     */
    static int add(LuksHeader h, HeaderDevice dev, byte[] volumeKey, byte[] passphrase, int wanted,
                   SlotSettings settings, ImageRef ref) throws IOException {
        try (NewSlot slot = prepare(h, passphrase, settings, ref)) {
            return commit(h, dev, volumeKey, slot, wanted, ref);
        }
    }

    /**
     * Writes a prepared slot into {@code h}, which the caller has just read from {@code dev}
     * while holding whatever excludes other editors: the key material first, then the header.
     *
     * @return the slot used
     */
    static int commit(LuksHeader h, HeaderDevice dev, byte[] volumeKey, NewSlot prepared, int wanted, ImageRef ref)
            throws IOException {
        if (!h.uuid().equals(prepared.uuid) || h.cipher().keyBytes() != prepared.slotKey.length) {
            throw ref.error("changed while the new key slot was being prepared (another LUKS header?)");
        }
        SecureRandom random = new SecureRandom();
        if (h instanceof Luks1Header h1) {
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
            Kdf.Pbkdf2Kdf kdf = (Kdf.Pbkdf2Kdf) prepared.kdf;
            byte[] material = material(volumeKey, prepared.slotKey, h1.cipher(), h1.slotStripes(slot), prepared.afHash,
                    random);
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
        byte[] material = material(volumeKey, prepared.slotKey, cipher, Luks1Header.STRIPES, prepared.afHash, random);
        dev.writeBytes(areaOffset, material);
        dev.flush();
        h2.addKeyslot(id, prepared.kdf, prepared.afHash, areaOffset, areaSize);
        h2.write(dev, random);
        return id;
    }

    /**
     * True if {@code now} (from a fresh read of the header) is the same slot as {@code seen}
     * (from an earlier read): same id, salt and key material place. A slot removed and added
     * again in between differs in its salt.
     */
    static boolean sameSlot(KeySlot seen, KeySlot now) {
        return seen.id() == now.id() && seen.areaOffset() == now.areaOffset()
                && Arrays.equals(salt(seen.kdf()), salt(now.kdf()));
    }

    private static byte[] salt(Kdf kdf) {
        if (kdf instanceof Kdf.Pbkdf2Kdf p) {
            return p.salt();
        }
        if (kdf instanceof Kdf.Argon2Kdf a) {
            return a.salt();
        }
        return null;
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
