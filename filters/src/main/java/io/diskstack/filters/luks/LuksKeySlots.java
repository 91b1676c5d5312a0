package io.diskstack.filters.luks;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.objects.Secret;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Key slot management on a LUKS image file that is not open elsewhere, for the command line
 * ({@code diskstack luks add-key/remove-key}), like cryptsetup's luksAddKey, luksKillSlot and
 * luksRemoveKey. Errors are {@link ConfigException}s naming the file; passphrases come from
 * secret objects and never appear in messages.
 *
 * <p>Edits open the image with the {@code file} driver, which takes QEMU's image lock for
 * writing: an image in use by a mount (or by QEMU) is refused, and two edits cannot run at once.
 */
public final class LuksKeySlots {
    /** The node name of the image opened for an edit. */
    private static final String NODE = "luks-keyslots";

    private LuksKeySlots() {}

    private interface Edit<T> {
        T run(LuksHeader h, HeaderDevice dev, ImageRef ref) throws IOException;
    }

    /** Opens {@code image} for writing under the image lock, reads its header and runs {@code edit}. */
    private static <T> T edit(Path image, Edit<T> edit) throws IOException {
        ImageRef ref = new ImageRef(null, image.toString());
        Path abs = image.toAbsolutePath().normalize();
        try (BlockGraph graph = new BlockGraph(DriverRegistry.load(), ObjectRegistry.load(), abs.getParent())) {
            Map<String, Object> opts = new LinkedHashMap<>();
            opts.put("driver", "file");
            opts.put("node-name", NODE);
            opts.put("filename", abs.toString());
            try {
                graph.open(opts);
            } catch (ConfigException e) {
                if (e.getMessage().contains(" is in use")) {
                    throw ref.error("is in use (mounted, or open in QEMU): unmount it first, or edit the key slots "
                            + "of a mounted image through MNT/.control/nodes/NODE/add-key and remove-key");
                }
                throw e;
            }
            BlockBackend backend = graph.addBackend("luks-keyslots", NODE, true);
            HeaderDevice dev = HeaderDevice.of(backend);
            return edit.run(LuksHeader.read(dev, ref), dev, ref);
        }
    }

    /**
     * Adds {@code newKey} in {@code slot} (the first free one if negative), unlocking the volume
     * with {@code existing}.
     *
     * @param iterTimeMs PBKDF2 time for the new slot, like QEMU's iter-time
     * @return the slot used
     */
    public static int addKey(Path image, Secret existing, Secret newKey, int slot, long iterTimeMs) throws IOException {
        return edit(image, (h, dev, ref) -> {
            byte[] pass = existing.bytes();
            byte[] key = null;
            byte[] added = newKey.bytes();
            try {
                KeySlots.Unlock u = KeySlots.open(h, dev, pass, ref);
                key = u.key();
                if (key == null) {
                    throw ref.error(u.failure(existing.id()));
                }
                LuksHash hash = h instanceof Luks1Header h1 ? h1.hash() : LuksHash.SHA256;
                return KeySlots.add(h, dev, key, added, slot, SlotSettings.pbkdf2(hash, iterTimeMs), ref);
            } finally {
                LuksNode.wipe(pass);
                LuksNode.wipe(key);
                LuksNode.wipe(added);
            }
        });
    }

    /** Disables {@code slot} and overwrites its key material (luksKillSlot). The last slot is kept. */
    public static void killSlot(Path image, int slot) throws IOException {
        edit(image, (h, dev, ref) -> {
            KeySlots.kill(h, dev, slot, ref);
            return null;
        });
    }

    /**
     * Removes the slot that {@code secret} opens (luksRemoveKey).
     *
     * @return the slot removed
     */
    public static int removeKey(Path image, Secret secret) throws IOException {
        return edit(image, (h, dev, ref) -> {
            byte[] pass = secret.bytes();
            KeySlots.Unlock u;
            try {
                u = KeySlots.open(h, dev, pass, ref);
            } finally {
                LuksNode.wipe(pass);
            }
            KeySlot slot = u.slot();
            LuksNode.wipe(u.key());
            if (slot == null) {
                throw ref.error(u.failure(secret.id()));
            }
            KeySlots.kill(h, dev, slot.id(), ref);
            return slot.id();
        });
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
