package io.diskstack.filters.luks;

import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/** How a key slot turns a passphrase into the key that decrypts its key material. */
sealed interface Kdf {
    /** The largest Argon2 memory cost we accept, in KiB: cryptsetup's own maximum (4 GiB). */
    long MAX_ARGON2_MEMORY_KIB = 4L << 20;

    byte[] derive(byte[] passphrase, int length);

    /** The LUKS2 kdf type name. */
    String type();

    /** PBKDF2-HMAC: LUKS1 slots, LUKS2 {@code pbkdf2} slots. */
    record Pbkdf2Kdf(LuksHash hash, long iterations, byte[] salt) implements Kdf {
        @Override
        public byte[] derive(byte[] passphrase, int length) {
            return Pbkdf2.derive(hash, passphrase, salt, iterations, length);
        }

        @Override
        public String type() {
            return "pbkdf2";
        }
    }

    /** Argon2i / Argon2id (version 0x13) from Bouncy Castle: LUKS2 slots. */
    record Argon2Kdf(boolean id, int time, int memoryKiB, int cpus, byte[] salt) implements Kdf {
        @Override
        public byte[] derive(byte[] passphrase, int length) {
            long needed = (long) memoryKiB * 1024 * 5 / 4;
            Runtime rt = Runtime.getRuntime();
            long available = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
            if (needed > available) {
                throw new IllegalStateException(type() + " needs " + (memoryKiB >> 10) + " MiB, and this JVM has "
                        + (available >> 20) + " MiB free (raise -Xmx)");
            }
            Argon2Parameters params = new Argon2Parameters.Builder(
                    id ? Argon2Parameters.ARGON2_id : Argon2Parameters.ARGON2_i)
                    .withVersion(Argon2Parameters.ARGON2_VERSION_13)
                    .withIterations(time)
                    .withMemoryAsKB(memoryKiB)
                    .withParallelism(cpus)
                    .withSalt(salt)
                    .build();
            Argon2BytesGenerator gen = new Argon2BytesGenerator();
            gen.init(params);
            byte[] out = new byte[length];
            gen.generateBytes(passphrase, out);
            params.clear();
            return out;
        }

        @Override
        public String type() {
            return id ? "argon2id" : "argon2i";
        }
    }
}
