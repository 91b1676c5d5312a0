package io.diskstack.filters.luks;

import io.diskstack.core.ConfigException;
import io.diskstack.core.objects.Secret;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Key slot management on a LUKS image file that is not open elsewhere, for the command line
 * ({@code diskstack luks add-key/remove-key}), like cryptsetup's luksAddKey, luksKillSlot and
 * luksRemoveKey. Errors are {@link ConfigException}s naming the file; passphrases come from
 * secret objects and never appear in messages.
 */
public final class LuksKeySlots {
    private LuksKeySlots() {}

    /**
     * Adds {@code newKey} in {@code slot} (the first free one if negative), unlocking the volume
     * with {@code existing}.
     *
     * @param iterTimeMs PBKDF2 time for the new slot, like QEMU's iter-time
     * @return the slot used
     */
    public static int addKey(Path image, Secret existing, Secret newKey, int slot, long iterTimeMs) throws IOException {
        ImageRef ref = new ImageRef(null, image.toString());
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            HeaderDevice dev = HeaderDevice.of(ch);
            LuksHeader h = LuksHeader.read(dev, ref);
            byte[] pass = existing.bytes();
            byte[] key = null;
            byte[] added = newKey.bytes();
            try {
                key = KeySlots.unlock(h, dev, pass, ref);
                if (key == null) {
                    throw ref.error("no key slot opens with secret '" + existing.id() + "'");
                }
                LuksHash hash = h instanceof Luks1Header h1 ? h1.hash() : LuksHash.SHA256;
                return KeySlots.add(h, dev, key, added, slot, SlotSettings.pbkdf2(hash, iterTimeMs), ref);
            } finally {
                LuksNode.wipe(pass);
                LuksNode.wipe(key);
                LuksNode.wipe(added);
            }
        }
    }

    /** Disables {@code slot} and overwrites its key material (luksKillSlot). The last slot is kept. */
    public static void killSlot(Path image, int slot) throws IOException {
        ImageRef ref = new ImageRef(null, image.toString());
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            HeaderDevice dev = HeaderDevice.of(ch);
            KeySlots.kill(LuksHeader.read(dev, ref), dev, slot, ref);
        }
    }

    /**
     * Removes the slot that {@code secret} opens (luksRemoveKey).
     *
     * @return the slot removed
     */
    public static int removeKey(Path image, Secret secret) throws IOException {
        ImageRef ref = new ImageRef(null, image.toString());
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            HeaderDevice dev = HeaderDevice.of(ch);
            LuksHeader h = LuksHeader.read(dev, ref);
            byte[] pass = secret.bytes();
            int slot;
            try {
                slot = KeySlots.findSlot(h, dev, pass, ref);
            } finally {
                LuksNode.wipe(pass);
            }
            if (slot < 0) {
                throw ref.error("no key slot opens with secret '" + secret.id() + "'");
            }
            KeySlots.kill(h, dev, slot, ref);
            return slot;
        }
    }

    /** The active key slots, one per line: no salts, no key material. */
    public static String listSlots(Path image) throws IOException {
        ImageRef ref = new ImageRef(null, image.toString());
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            return describeSlots(LuksHeader.read(HeaderDevice.of(ch), ref));
        }
    }

    static String describeSlots(LuksHeader h) {
        StringBuilder b = new StringBuilder();
        for (KeySlot s : h.activeSlots()) {
            b.append(s.id()).append(' ').append(s.kdf().type());
            if (s.kdf() instanceof Kdf.Pbkdf2Kdf p) {
                b.append(' ').append(p.hash().luksName).append(" iterations=").append(p.iterations());
            } else if (s.kdf() instanceof Kdf.Argon2Kdf a) {
                b.append(" time=").append(a.time()).append(" memory=").append(a.memoryKiB()).append("K cpus=")
                        .append(a.cpus());
            }
            b.append('\n');
        }
        return b.toString();
    }
}
