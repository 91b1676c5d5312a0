package io.diskstack.filters.luks;

import java.security.SecureRandom;

/**
 * How to protect a new key slot: PBKDF2 with {@code hash} for {@code iterTimeMs} of this
 * machine's time (QEMU's iter-time), or Argon2 (LUKS2 only) with explicit costs.
 */
record SlotSettings(LuksHash hash, long iterTimeMs, String kdfType, int argon2Time, int argon2MemoryKiB,
                    int argon2Cpus) {
    static SlotSettings pbkdf2(LuksHash hash, long iterTimeMs) {
        return new SlotSettings(hash, iterTimeMs, "pbkdf2", 0, 0, 0);
    }

    Kdf newKdf(SecureRandom random) {
        byte[] salt = new byte[32];
        random.nextBytes(salt);
        return switch (kdfType) {
            case "argon2i", "argon2id" -> new Kdf.Argon2Kdf(kdfType.equals("argon2id"), argon2Time, argon2MemoryKiB,
                    argon2Cpus, salt);
            default -> new Kdf.Pbkdf2Kdf(hash, Pbkdf2.iterationsFor(hash, iterTimeMs, 1000), salt);
        };
    }
}
