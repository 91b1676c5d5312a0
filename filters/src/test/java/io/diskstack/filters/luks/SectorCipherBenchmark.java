package io.diskstack.filters.luks;

import java.nio.ByteBuffer;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The sector cipher on 64 KiB buffers, one thread: the score is bytes per second per core
 * ({@code @OperationsPerInvocation} counts bytes). {@code pool1MiB} is a 1 MiB request through
 * {@link CipherPool}, which splits it across two cores. Run with {@code scripts/bench-cipher}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class SectorCipherBenchmark {
    private static final int SIZE = 64 * 1024;

    @Param({"aes-xts-plain64:64", "aes-cbc-essiv:sha256:32"})
    public String cipher;

    @Param({"512", "4096"})
    public int sectorSize;

    private SectorCipher sectorCipher;
    private CipherPool pool;
    private ByteBuffer src;
    private ByteBuffer dst;
    private ByteBuffer bigSrc;
    private ByteBuffer bigDst;
    private long sector;

    @Setup
    public void setUp() {
        int colon = cipher.lastIndexOf(':');
        int keyBytes = Integer.parseInt(cipher.substring(colon + 1));
        CipherSpec spec = CipherSpec.parseLuks2(cipher.substring(0, colon), keyBytes);
        byte[] key = new byte[keyBytes];
        new Random(1).nextBytes(key);
        sectorCipher = spec.newCipher(key, sectorSize);
        pool = new CipherPool(spec, key, sectorSize);
        src = ByteBuffer.allocateDirect(SIZE);
        dst = ByteBuffer.allocateDirect(SIZE);
        bigSrc = ByteBuffer.allocateDirect(1 << 20);
        bigDst = ByteBuffer.allocateDirect(1 << 20);
        byte[] data = new byte[1 << 20];
        new Random(2).nextBytes(data);
        src.put(0, data, 0, SIZE);
        bigSrc.put(0, data);
    }

    @TearDown
    public void tearDown() {
        sectorCipher.close();
        pool.close();
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public ByteBuffer encrypt64KiB() {
        sectorCipher.encrypt(src, 0, dst, 0, SIZE, sector);
        sector += SIZE / 512;
        return dst;
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public ByteBuffer decrypt64KiB() {
        sectorCipher.decrypt(src, 0, dst, 0, SIZE, sector);
        sector += SIZE / 512;
        return dst;
    }

    @Benchmark
    @OperationsPerInvocation(1 << 20)
    public ByteBuffer pool1MiBEncrypt() {
        pool.encrypt(bigSrc, 0, bigDst, 0, 1 << 20, sector);
        sector += (1 << 20) / 512;
        return bigDst;
    }
}
