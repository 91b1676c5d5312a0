package io.diskstack.formats.dedup;

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
import org.openjdk.jmh.annotations.Warmup;

/**
 * Fingerprinting a 1 MiB request cut into blocks, as a dedup write does (zero test and SHA-256 of
 * each block), one thread: the score is bytes per second per core. The request is in a direct
 * buffer, as from FUSE. Run with {@code scripts/bench dedup fingerprint}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class FingerprintBenchmark {
    private static final int SIZE = 1 << 20;

    @Param({"4096", "65536"})
    public int blockSize;

    private ByteBuffer request;
    private long[] out;

    @Setup
    public void setUp() {
        byte[] data = new byte[SIZE];
        new Random(3).nextBytes(data);
        request = ByteBuffer.allocateDirect(SIZE);
        request.put(data).flip();
        out = new long[2 * (SIZE / blockSize)];
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public long[] fingerprint1MiB() {
        for (int i = 0; i < SIZE / blockSize; i++) {
            Fingerprint.of(request.slice(i * blockSize, blockSize), out, 2 * i);
        }
        return out;
    }
}
