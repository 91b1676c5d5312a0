package io.diskstack.filters.luks;

import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/** How a key slot turns a passphrase into the key that decrypts its key material. */
sealed interface Kdf {
    /** The largest Argon2 memory cost we accept, in KiB: cryptsetup's own maximum (4 GiB). */
    long MAX_ARGON2_MEMORY_KIB = 4L << 20;
    /**
     * The largest Argon2 work a header may ask for at all: time × memory, in KiB passes (256 GiB);
     * below it, {@link KdfCost} decides from this machine's speed.
     */
    long MAX_ARGON2_WORK_KIB = 1L << 28;

    /**
     * Derives the key.
     *
     * @throws IllegalStateException if the derivation cannot run here (its message says why)
     */
    byte[] derive(byte[] passphrase, int length);

    /** The LUKS2 kdf type name. */
    String type();

    /**
     * Null if this KDF can run here now, else why not, as a phrase without secrets: too much
     * memory for this JVM, too slow ({@link KdfCost}), an unsupported type. Such a key slot is
     * skipped.
     */
    default String unusable() {
        return null;
    }

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

        @Override
        public String unusable() {
            return KdfCost.pbkdf2(hash, iterations);
        }
    }

    /** Argon2i / Argon2id (version 0x13) from Bouncy Castle: LUKS2 slots. */
    record Argon2Kdf(boolean id, int time, int memoryKiB, int cpus, byte[] salt) implements Kdf {
        /** Heap kept free for everything else while Argon2 runs. */
        private static final long RESERVE = 64L << 20;

        /** Bouncy Castle's Argon2 memory: a 1 KiB block is a long[128] plus headers and a reference. */
        static long heapBytes(long memoryKiB) {
            return memoryKiB * 1100;
        }

        /** The Argon2 memory cost (KiB) this JVM can give now. */
        static long limitKiB() {
            Runtime rt = Runtime.getRuntime();
            long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory()) - RESERVE;
            return Math.max(0, free / 1100);
        }

        @Override
        public String unusable() {
            String slow = KdfCost.argon2(type(), time, memoryKiB);
            if (slow != null) {
                return slow;
            }
            if (memoryKiB <= limitKiB()) {
                return null;
            }
            System.gc(); // what is in use may be mostly garbage: ask once before refusing
            long limit = limitKiB();
            if (memoryKiB <= limit) {
                return null;
            }
            return type() + " needs " + ((memoryKiB + 1023) >> 10) + " MiB of memory, above the limit of "
                    + (limit >> 10) + " MiB here (the Java heap: raise -Xmx)";
        }

        @Override
        public byte[] derive(byte[] passphrase, int length) {
            String why = unusable();
            if (why != null) {
                throw new IllegalStateException(why);
            }
            Argon2Parameters params = new Argon2Parameters.Builder(
                    id ? Argon2Parameters.ARGON2_id : Argon2Parameters.ARGON2_i)
                    .withVersion(Argon2Parameters.ARGON2_VERSION_13)
                    .withIterations(time)
                    .withMemoryAsKB(memoryKiB)
                    .withParallelism(cpus)
                    .withSalt(salt)
                    .build();
            byte[] out = new byte[length];
            try {
                Argon2BytesGenerator gen = new Argon2BytesGenerator();
                gen.init(params);
                gen.generateBytes(passphrase, out);
            } catch (OutOfMemoryError e) {
                // The one big allocation failed (the heap filled up since the check): it is garbage now.
                throw new IllegalStateException(type() + " needs " + ((memoryKiB + 1023) >> 10)
                        + " MiB of memory, more than the Java heap had free (raise -Xmx)");
            } finally {
                params.clear();
            }
            return out;
        }

        @Override
        public String type() {
            return id ? "argon2id" : "argon2i";
        }
    }

    /** A kdf type we cannot run: its slot is skipped, and named if nothing else opens. */
    record Unsupported(String type, String why) implements Kdf {
        @Override
        public byte[] derive(byte[] passphrase, int length) {
            throw new IllegalStateException(why);
        }

        @Override
        public String unusable() {
            return why;
        }
    }
}
