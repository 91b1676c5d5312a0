package io.diskstack.filters.luks;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The LUKS1 phdr (592 bytes at offset 0, big-endian; LUKS1 spec section 3). Keeps the raw bytes
 * so key-slot edits rewrite exactly what they change.
 */
final class Luks1Header extends LuksHeader {
    static final int PHDR_SIZE = 592;
    static final int SLOTS = 8;
    static final int SLOT_ACTIVE = 0x00AC71F3;
    static final int SLOT_DISABLED = 0x0000DEAD;
    static final int DIGEST_SIZE = 20;
    static final int SALT_SIZE = 32;
    static final int STRIPES = 4000;
    /** Bound on stripes we accept, so a corrupt header cannot make us read gigabytes. */
    static final int MAX_STRIPES = 64 * 4000;

    private final byte[] raw;
    private final CipherSpec cipher;
    private final LuksHash hash;
    private final String uuid;

    private Luks1Header(byte[] raw, CipherSpec cipher, LuksHash hash, String uuid) {
        this.raw = raw;
        this.cipher = cipher;
        this.hash = hash;
        this.uuid = uuid;
    }

    static Luks1Header parse(byte[] first, long deviceSize, ImageRef ref) {
        byte[] raw = Arrays.copyOf(first, PHDR_SIZE);
        ByteBuffer b = ByteBuffer.wrap(raw);
        String cipherName = Bytes.cString(raw, 8, 32);
        String cipherMode = Bytes.cString(raw, 40, 32);
        String hashSpec = Bytes.cString(raw, 72, 32);
        if (cipherName == null) {
            throw ref.error("LUKS1 'cipher-name'", "is not a NUL-terminated ASCII string");
        }
        if (cipherMode == null) {
            throw ref.error("LUKS1 'cipher-mode'", "is not a NUL-terminated ASCII string");
        }
        if (hashSpec == null) {
            throw ref.error("LUKS1 'hash-spec'", "is not a NUL-terminated ASCII string");
        }
        LuksHash hash = LuksHash.byName(hashSpec);
        if (hash == null) {
            throw ref.error("LUKS1 'hash-spec'", "'" + hashSpec + "' is not supported (supported: "
                    + LuksHash.supportedNames() + ")");
        }
        long payload = Integer.toUnsignedLong(b.getInt(104));
        long keyBytes = Integer.toUnsignedLong(b.getInt(108));
        if (keyBytes < 1 || keyBytes > 512) {
            throw ref.error("LUKS1 'key-bytes'", keyBytes + " is out of range");
        }
        CipherSpec cipher;
        try {
            cipher = CipherSpec.parse(cipherName, cipherMode, (int) keyBytes);
        } catch (IllegalArgumentException e) {
            String field = e.getMessage().startsWith("key size") ? "'key-bytes'"
                    : e.getMessage().startsWith("cipher '") ? "'cipher-name'" : "'cipher-mode'";
            throw ref.error("LUKS1 " + field, e.getMessage());
        }
        if (payload * SECTOR > deviceSize) {
            throw ref.error("LUKS1 'payload-offset'", payload + " sectors (" + payload * SECTOR
                    + " bytes) is past the end of the image (" + deviceSize + " bytes)");
        }
        long digestIterations = Integer.toUnsignedLong(b.getInt(164));
        if (digestIterations < 1) {
            throw ref.error("LUKS1 'mk-digest-iter'", "is 0");
        }
        // Every unlock attempt runs the digest: a hostile count would hang the open.
        String slow = KdfCost.pbkdf2(hash, digestIterations);
        if (slow != null) {
            throw ref.error("LUKS1 'mk-digest-iter'", slow);
        }
        String uuid = Bytes.cString(raw, 168, 40);
        Luks1Header h = new Luks1Header(raw, cipher, hash, uuid == null ? "" : uuid);
        long[][] areas = new long[SLOTS][];
        for (int i = 0; i < SLOTS; i++) {
            int base = 208 + 48 * i;
            int active = b.getInt(base);
            String field = "LUKS1 key slot " + i;
            if (active != SLOT_ACTIVE && active != SLOT_DISABLED) {
                throw ref.error(field + " 'active'", String.format("0x%08x is neither enabled nor disabled", active));
            }
            long stripes = Integer.toUnsignedLong(b.getInt(base + 44));
            long start = Integer.toUnsignedLong(b.getInt(base + 40)) * SECTOR;
            if (stripes < 1 || stripes > MAX_STRIPES) {
                throw ref.error(field + " 'stripes'", stripes + " is out of range [1, " + MAX_STRIPES + "]");
            }
            long end = start + (keyBytes * stripes + SECTOR - 1) / SECTOR * SECTOR;
            if (start < PHDR_SIZE) {
                throw ref.error(field + " 'key-material-offset'", "overlaps the header");
            }
            if (payload != 0 && end > payload * SECTOR) {
                throw ref.error(field + " 'key-material-offset'", "key material ends past the payload offset");
            }
            if (active == SLOT_ACTIVE) {
                if (end > deviceSize) {
                    throw ref.error(field + " 'key-material-offset'", "key material ends past the end of the image ("
                            + deviceSize + " bytes)");
                }
                if (Integer.toUnsignedLong(b.getInt(base + 4)) < 1) {
                    throw ref.error(field + " 'iterations'", "is 0");
                }
            }
            areas[i] = new long[] {start, end};
            for (int j = 0; j < i; j++) {
                if (areas[j][0] < end && start < areas[j][1]) {
                    throw ref.error(field + " 'key-material-offset'", "overlaps key slot " + j);
                }
            }
        }
        return h;
    }

    /**
     * A new header. Slots are laid out as cryptsetup and QEMU do (sector 8, then each slot's
     * sectors rounded up to 4 KiB); the payload starts at the next MiB, like cryptsetup's.
     */
    static Luks1Header create(CipherSpec cipher, LuksHash hash, String uuid, byte[] mkDigest, byte[] mkSalt,
                              long mkIterations) {
        byte[] raw = new byte[PHDR_SIZE];
        ByteBuffer b = ByteBuffer.wrap(raw);
        System.arraycopy(MAGIC, 0, raw, 0, 6);
        b.putShort(6, (short) 1);
        Bytes.putCString(raw, 8, 32, CipherSpec.CIPHER);
        Bytes.putCString(raw, 40, 32, cipher.luks1Mode());
        Bytes.putCString(raw, 72, 32, hash.luksName);
        b.putInt(108, cipher.keyBytes());
        System.arraycopy(mkDigest, 0, raw, 112, DIGEST_SIZE);
        System.arraycopy(mkSalt, 0, raw, 132, SALT_SIZE);
        b.putInt(164, (int) mkIterations);
        Bytes.putCString(raw, 168, 40, uuid);
        long slotSectors = slotSectors(cipher.keyBytes());
        long offset = 8;
        for (int i = 0; i < SLOTS; i++) {
            int base = 208 + 48 * i;
            b.putInt(base, SLOT_DISABLED);
            b.putInt(base + 40, (int) offset);
            b.putInt(base + 44, STRIPES);
            offset += slotSectors;
        }
        long payload = (offset + 2047) / 2048 * 2048;
        b.putInt(104, (int) payload);
        return new Luks1Header(raw, cipher, hash, uuid);
    }

    /** Sectors of one slot's key material, rounded up to 4 KiB (LUKS_ALIGN_KEYSLOTS). */
    static long slotSectors(int keyBytes) {
        long sectors = ((long) keyBytes * STRIPES + SECTOR - 1) / SECTOR;
        return (sectors + 7) / 8 * 8;
    }

    byte[] toBytes() {
        return raw.clone();
    }

    LuksHash hash() {
        return hash;
    }

    private ByteBuffer buf() {
        return ByteBuffer.wrap(raw);
    }

    boolean isActive(int slot) {
        return buf().getInt(208 + 48 * slot) == SLOT_ACTIVE;
    }

    long slotOffset(int slot) {
        return Integer.toUnsignedLong(buf().getInt(208 + 48 * slot + 40)) * SECTOR;
    }

    int slotStripes(int slot) {
        return buf().getInt(208 + 48 * slot + 44);
    }

    /** Marks a slot active with its PBKDF2 parameters (its key material must already be on disk). */
    void activate(int slot, long iterations, byte[] salt) {
        int base = 208 + 48 * slot;
        ByteBuffer b = buf();
        b.putInt(base + 4, (int) iterations);
        System.arraycopy(salt, 0, raw, base + 8, SALT_SIZE);
        b.putInt(base, SLOT_ACTIVE);
    }

    void disable(int slot) {
        int base = 208 + 48 * slot;
        ByteBuffer b = buf();
        b.putInt(base, SLOT_DISABLED);
        b.putInt(base + 4, 0);
        Arrays.fill(raw, base + 8, base + 8 + SALT_SIZE, (byte) 0);
    }

    @Override
    int version() {
        return 1;
    }

    @Override
    String uuid() {
        return uuid;
    }

    @Override
    CipherSpec cipher() {
        return cipher;
    }

    @Override
    int sectorSize() {
        return SECTOR;
    }

    @Override
    long payloadOffset() {
        return Integer.toUnsignedLong(buf().getInt(104)) * SECTOR;
    }

    @Override
    long fixedSize() {
        return -1;
    }

    @Override
    long ivTweak() {
        return 0;
    }

    @Override
    long metadataSize() {
        long end = PHDR_SIZE;
        for (int i = 0; i < SLOTS; i++) {
            end = Math.max(end, slotOffset(i) + ((long) cipher.keyBytes() * Integer.toUnsignedLong(slotStripes(i))
                    + SECTOR - 1) / SECTOR * SECTOR);
        }
        return end;
    }

    @Override
    List<KeySlot> activeSlots() {
        List<KeySlot> slots = new ArrayList<>();
        for (int i = 0; i < SLOTS; i++) {
            if (isActive(i)) {
                slots.add(slot(i));
            }
        }
        return slots;
    }

    KeySlot slot(int i) {
        int base = 208 + 48 * i;
        ByteBuffer b = buf();
        long iterations = Integer.toUnsignedLong(b.getInt(base + 4));
        byte[] salt = Arrays.copyOfRange(raw, base + 8, base + 8 + SALT_SIZE);
        int stripes = slotStripes(i);
        long areaSize = (long) cipher.keyBytes() * stripes;
        return new KeySlot(i, new Kdf.Pbkdf2Kdf(hash, iterations, salt), cipher, slotOffset(i), areaSize,
                cipher.keyBytes(), stripes, hash, 1);
    }

    @Override
    boolean checkVolumeKey(KeySlot slot, byte[] key) {
        ByteBuffer b = buf();
        byte[] salt = Arrays.copyOfRange(raw, 132, 132 + SALT_SIZE);
        long iterations = Integer.toUnsignedLong(b.getInt(164));
        byte[] digest = Pbkdf2.derive(hash, key, salt, iterations, DIGEST_SIZE);
        return MessageDigest.isEqual(digest, Arrays.copyOfRange(raw, 112, 112 + DIGEST_SIZE));
    }
}
