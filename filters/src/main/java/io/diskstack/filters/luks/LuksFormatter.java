package io.diskstack.filters.luks;

import io.diskstack.core.ConfigException;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.objects.Secret;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Locale;
import java.util.UUID;

/**
 * {@code diskstack create -f luks -o key-secret=s0[,…] FILE SIZE} with QEMU's option names
 * (cipher-alg, cipher-mode, ivgen-alg, ivgen-hash-alg, hash-alg, iter-time) and our own
 * {@code format=luks1|luks2}, {@code sector-size} (LUKS2), {@code kdf=pbkdf2|argon2i|argon2id}
 * with {@code kdf-time}, {@code kdf-memory} (KiB) and {@code kdf-cpus} (LUKS2).
 * LUKS1 is the default, as QEMU 7.2 opens only LUKS1.
 */
final class LuksFormatter {
    /** LUKS2 data offset, as cryptsetup's default: 16 MiB of header and key slots. */
    static final long LUKS2_DATA_OFFSET = 16L << 20;

    private LuksFormatter() {}

    static void create(ImageCreateContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        String owner = "luks image '" + ctx.file() + "'";
        ImageRef ref = new ImageRef(null, ctx.file().toString());
        String secretId = o.requireString("key-secret");
        Secret secret = ctx.objects().get(secretId, Secret.class, owner, "key-secret");
        String alg = o.optString("cipher-alg", "aes-256").toLowerCase(Locale.ROOT);
        int aesKey = switch (alg) {
            case "aes-128" -> 16;
            case "aes-192" -> 24;
            case "aes-256" -> 32;
            default -> throw o.error("cipher-alg", "value '" + alg + "' is not supported (aes-128, aes-192, aes-256)");
        };
        String mode = o.optString("cipher-mode", "xts").toLowerCase(Locale.ROOT);
        String ivgen = o.optString("ivgen-alg", "plain64").toLowerCase(Locale.ROOT);
        String ivHash = o.optString("ivgen-hash-alg", "sha256").toLowerCase(Locale.ROOT);
        LuksHash hash = hashOption(o, "hash-alg");
        long iterTime = o.optLong("iter-time", 2000, 1, 1_000_000);
        String format = o.optString("format", "luks1");
        if (!format.equals("luks1") && !format.equals("luks2")) {
            throw o.error("format", "value '" + format + "' is not one of luks1, luks2");
        }
        boolean luks2 = format.equals("luks2");
        long sectorSize = o.optLong("sector-size", 512, 512, 4096);
        String kdfType = o.optString("kdf", "pbkdf2");
        int kdfTime = (int) o.optLong("kdf-time", 4, 1, 1 << 20);
        int kdfMemory = (int) o.optLong("kdf-memory", 65536, 8, Kdf.MAX_ARGON2_MEMORY_KIB);
        int kdfCpus = (int) o.optLong("kdf-cpus", 1, 1, 64);
        if (!luks2 && (sectorSize != 512 || !kdfType.equals("pbkdf2"))) {
            throw o.error(sectorSize != 512 ? "sector-size" : "kdf", "needs format=luks2");
        }
        if (Integer.bitCount((int) sectorSize) != 1) {
            throw o.error("sector-size", "value " + sectorSize + " is not 512, 1024, 2048 or 4096");
        }
        if (!kdfType.matches("pbkdf2|argon2i|argon2id")) {
            throw o.error("kdf", "value '" + kdfType + "' is not one of pbkdf2, argon2i, argon2id");
        }
        String ivPart = switch (ivgen) {
            case "plain", "plain64" -> ivgen;
            case "essiv" -> "essiv:" + ivHash;
            default -> throw o.error("ivgen-alg", "value '" + ivgen + "' is not one of plain, plain64, essiv");
        };
        CipherSpec cipher;
        try {
            cipher = CipherSpec.parse("aes", mode.equals("ecb") ? "ecb" : mode + "-" + ivPart,
                    mode.equals("xts") ? 2 * aesKey : aesKey);
        } catch (IllegalArgumentException e) {
            throw o.error(mode.equals("xts") || mode.equals("cbc") || mode.equals("ecb")
                    ? (ivgen.equals("essiv") ? "ivgen-hash-alg" : "ivgen-alg") : "cipher-mode", e.getMessage());
        }
        if (ctx.size() < 0) {
            throw new ConfigException(owner + ": a size is required");
        }
        long size = (ctx.size() + sectorSize - 1) / sectorSize * sectorSize;
        SlotSettings settings = new SlotSettings(hash, iterTime, kdfType, kdfTime, kdfMemory, kdfCpus);
        o.assertAllConsumed();

        SecureRandom random = new SecureRandom();
        byte[] volumeKey = new byte[cipher.keyBytes()];
        random.nextBytes(volumeKey);
        byte[] pass = secret.bytes();
        boolean done = false;
        try (FileChannel ch = FileChannel.open(ctx.file(), StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            HeaderDevice dev = HeaderDevice.of(ch);
            String uuid = UUID.randomUUID().toString();
            byte[] salt = new byte[32];
            random.nextBytes(salt);
            if (!luks2) {
                long mkIterations = Pbkdf2.iterationsFor(hash, Math.max(1, iterTime / 8), 1000);
                byte[] digest = Pbkdf2.derive(hash, volumeKey, salt, mkIterations, Luks1Header.DIGEST_SIZE);
                Luks1Header h = Luks1Header.create(cipher, hash, uuid, digest, salt, mkIterations);
                ch.truncate(0);
                extend(ch, h.payloadOffset() + size);
                KeySlots.add(h, dev, volumeKey, pass, 0, settings, ref);
            } else {
                long digestIterations = Pbkdf2.iterationsFor(LuksHash.SHA256, Math.max(1, iterTime / 16), 1000);
                byte[] digest = Pbkdf2.derive(LuksHash.SHA256, volumeKey, salt, digestIterations, 32);
                long area = 2 * Luks2Header.HDR_SIZES[0];
                long areaSize = ((long) cipher.keyBytes() * Luks1Header.STRIPES + 4095) / 4096 * 4096;
                Kdf kdf = settings.newKdf(random);
                byte[] slotKey = kdf.derive(pass, cipher.keyBytes());
                byte[] material = KeySlots.material(volumeKey, slotKey, cipher, Luks1Header.STRIPES, hash, random);
                LuksNode.wipe(slotKey);
                Luks2Header h = Luks2Header.create(ref, cipher, (int) sectorSize, uuid, LUKS2_DATA_OFFSET,
                        LuksHash.SHA256, digestIterations, salt, digest, kdf, hash, area, areaSize);
                extend(ch, LUKS2_DATA_OFFSET + size);
                dev.writeBytes(area, material);
                dev.flush();
                h.write(dev, random);
            }
            ch.force(true);
            done = true;
        } finally {
            LuksNode.wipe(volumeKey);
            LuksNode.wipe(pass);
            if (!done) {
                Files.deleteIfExists(ctx.file());
            }
        }
    }

    private static void extend(FileChannel ch, long length) throws IOException {
        // Sparse: writing the last byte sets the length without allocating the payload.
        ch.write(java.nio.ByteBuffer.wrap(new byte[1]), length - 1);
    }

    private static LuksHash hashOption(NodeOptions o, String key) {
        String name = o.optString(key, "sha256");
        LuksHash h = LuksHash.byName(name);
        if (h == null) {
            throw o.error(key, "value '" + name + "' is not supported (" + LuksHash.supportedNames() + ")");
        }
        return h;
    }
}
