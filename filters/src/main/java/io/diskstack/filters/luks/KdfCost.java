package io.diskstack.filters.luks;

import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/**
 * The one bound on the key derivation costs a header asks for (key slots, volume key digests):
 * each is estimated from this machine's speed, measured once in a short calibration, and refused
 * when it would take longer than two minutes. A hostile header (2^31 PBKDF2 iterations in a
 * digest) then fails in milliseconds instead of hanging the mount. Two minutes are 60 times
 * cryptsetup's default iter-time of 2 s, which leaves room for a header made by cryptsetup's
 * native, multi-threaded Argon2 (we run its lanes one after another) on a faster machine.
 */
final class KdfCost {
    static final long DEFAULT_LIMIT_MILLIS = 120_000;
    /** Below this many PBKDF2 iterations, no hash takes more than a few seconds: no need to measure. */
    private static final long PBKDF2_ALWAYS_FAST = 1_000_000;
    /** Below this much Argon2 work (KiB × passes: 64 MiB), no machine takes more than a few seconds. */
    private static final long ARGON2_ALWAYS_FAST_KIB = 64L << 10;

    /** A key derivation estimated to take longer than this here is not run. */
    private static volatile long limitMillis = DEFAULT_LIMIT_MILLIS;
    private static final int CALIBRATION_KIB = 16 << 10;

    private static volatile double argon2KibPerMilli;

    private KdfCost() {}

    /** Tests of damaged headers lower the bound so that any case they run ends in seconds. */
    static void limitMillis(long millis) {
        limitMillis = millis;
    }

    /** Null if PBKDF2 with {@code iterations} runs within the limit here, else why not (one phrase). */
    static String pbkdf2(LuksHash hash, long iterations) {
        if (iterations <= PBKDF2_ALWAYS_FAST) {
            return null;
        }
        return overLimit("pbkdf2-" + hash.luksName + " with " + iterations + " iterations",
                iterations / Pbkdf2.iterationsPerMilli(hash));
    }

    /** Null if Argon2 with {@code time} passes over {@code memoryKiB} runs within the limit here, else why not. */
    static String argon2(String type, long time, long memoryKiB) {
        long work = time * memoryKiB;
        if (work <= ARGON2_ALWAYS_FAST_KIB) {
            return null;
        }
        return overLimit(type + " with " + time + " passes over " + memoryKiB + " KiB", work / argon2KibPerMilli());
    }

    private static String overLimit(String what, double millis) {
        long limit = limitMillis;
        if (millis <= limit) {
            return null;
        }
        return what + " would take about " + Math.round(millis / 1000) + " s here (the limit is "
                + limit / 1000 + " s)";
    }

    /** Argon2 speed here in KiB-passes per millisecond: one pass over 16 MiB, measured once. */
    private static double argon2KibPerMilli() {
        double rate = argon2KibPerMilli;
        if (rate > 0) {
            return rate;
        }
        synchronized (KdfCost.class) {
            if (argon2KibPerMilli > 0) {
                return argon2KibPerMilli;
            }
            Argon2Parameters params = new Argon2Parameters.Builder(Argon2Parameters.ARGON2_id)
                    .withVersion(Argon2Parameters.ARGON2_VERSION_13).withIterations(1)
                    .withMemoryAsKB(CALIBRATION_KIB).withParallelism(1).withSalt(new byte[16]).build();
            Argon2BytesGenerator gen = new Argon2BytesGenerator();
            gen.init(params);
            long start = System.nanoTime();
            gen.generateBytes(new byte[8], new byte[32]);
            double millis = Math.max(0.001, (System.nanoTime() - start) / 1e6);
            argon2KibPerMilli = CALIBRATION_KIB / millis;
            return argon2KibPerMilli;
        }
    }
}
