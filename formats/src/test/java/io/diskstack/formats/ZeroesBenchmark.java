package io.diskstack.formats;

import io.diskstack.core.buffer.Zeroes;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The zero test of a 1 MiB block of zeroes (the worst case: every byte is read) in a direct
 * buffer, as a copy job reads it: {@link Zeroes#isAllZero} against the loop over longs it
 * replaced. Scores are bytes per second on one core. Run with {@code scripts/bench zeroes}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class ZeroesBenchmark {
    private static final int SIZE = 1 << 20;

    private ByteBuffer block;
    private byte[] array;

    @Setup
    public void setUp() {
        block = ByteBuffer.allocateDirect(SIZE);
        array = new byte[SIZE];
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public boolean zeroesDirect() {
        return Zeroes.isAllZero(block);
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public boolean zeroesArray() {
        return Zeroes.isAllZero(array, 0, SIZE);
    }

    @Benchmark
    @OperationsPerInvocation(SIZE)
    public boolean longLoopDirect() {
        for (int i = 0; i + 8 <= SIZE; i += 8) {
            if (block.getLong(i) != 0) {
                return false;
            }
        }
        return true;
    }
}
