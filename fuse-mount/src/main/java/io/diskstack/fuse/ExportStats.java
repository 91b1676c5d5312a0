package io.diskstack.fuse;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAccumulator;
import java.util.concurrent.atomic.LongAdder;

/** Request counters of one exported disk, for {@code .control/DISK/stats}. */
final class ExportStats {
    final LongAdder reads = new LongAdder();
    final LongAdder readBytes = new LongAdder();
    final LongAdder writes = new LongAdder();
    final LongAdder writeBytes = new LongAdder();
    final LongAdder flushes = new LongAdder();
    final LongAdder discards = new LongAdder();
    final LongAdder errors = new LongAdder();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final LongAccumulator peakInFlight = new LongAccumulator(Math::max, 0);

    /** A read or write begins; pair with {@link #end()}. */
    void begin() {
        peakInFlight.accumulate(inFlight.incrementAndGet());
    }

    void end() {
        inFlight.decrementAndGet();
    }

    String render() {
        return "reads " + reads.sum() + "\n"
                + "read-bytes " + readBytes.sum() + "\n"
                + "writes " + writes.sum() + "\n"
                + "write-bytes " + writeBytes.sum() + "\n"
                + "flushes " + flushes.sum() + "\n"
                + "discards " + discards.sum() + "\n"
                + "errors " + errors.sum() + "\n"
                + "in-flight " + inFlight.get() + "\n"
                + "peak-in-flight " + peakInFlight.get() + "\n";
    }
}
