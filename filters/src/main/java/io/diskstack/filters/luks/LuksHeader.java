package io.diskstack.filters.luks;

import java.io.IOException;
import java.util.List;

/** A parsed LUKS header of either version: what the data path and the key slots need. */
abstract sealed class LuksHeader permits Luks1Header, Luks2Header {
    static final byte[] MAGIC = {'L', 'U', 'K', 'S', (byte) 0xBA, (byte) 0xBE};
    static final int SECTOR = 512;

    /** Reads and validates the header at the start of {@code dev}. */
    static LuksHeader read(HeaderDevice dev, ImageRef ref) throws IOException {
        long size = dev.size();
        if (size < 4096) {
            throw ref.error("is too small to hold a LUKS header (" + size + " bytes, at least 4096)");
        }
        byte[] first = dev.readBytes(0, 4096);
        int version = ((first[6] & 0xff) << 8) | (first[7] & 0xff);
        boolean magic = java.util.Arrays.equals(first, 0, 6, MAGIC, 0, 6);
        if (!magic && version == 2) {
            // A damaged primary LUKS2 header: the secondary may still be good.
            return Luks2Header.read(dev, first, ref);
        }
        if (!magic) {
            throw ref.error("LUKS 'magic'", "is missing: not a LUKS image");
        }
        return switch (version) {
            case 1 -> Luks1Header.parse(first, size, ref);
            case 2 -> Luks2Header.read(dev, first, ref);
            default -> throw ref.error("LUKS 'version'", version + " is not supported (1 or 2)");
        };
    }

    abstract int version();

    abstract String uuid();

    /** The data cipher and volume key length. */
    abstract CipherSpec cipher();

    /** Encryption sector size: 512, or up to 4096 for LUKS2. */
    abstract int sectorSize();

    /** Where the encrypted data starts on the data device, in bytes. */
    abstract long payloadOffset();

    /** The data size in bytes, or -1 if it runs to the end of the device. */
    abstract long fixedSize();

    /** The IV sector number (512-byte units) of the first data sector. */
    abstract long ivTweak();

    /** Bytes the header and key material occupy at the start of the header device. */
    abstract long metadataSize();

    /** Active slots that can open the data, in the order to try them. */
    abstract List<KeySlot> activeSlots();

    /** True if {@code key} is the volume key, as checked by the digest of {@code slot}. */
    abstract boolean checkVolumeKey(KeySlot slot, byte[] key);

    /** A short description for the graph view: no key material, no salts. */
    String describe() {
        return "LUKS" + version() + " " + cipher() + (sectorSize() != SECTOR ? " sector " + sectorSize() : "");
    }
}
