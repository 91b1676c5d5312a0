package io.diskstack.core;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAccumulator;
import java.util.concurrent.atomic.LongAdder;

/**
 * Request counters of one backend, whatever front end sends the requests, for
 * {@code MNT/.control/DISK/stats}. Discards count every request that may deallocate (a discard,
 * or write-zeroes that may unmap: what a punched hole becomes).
 */
public final class BackendStats {
    private final LongAdder reads = new LongAdder();
    private final LongAdder readBytes = new LongAdder();
    private final LongAdder writes = new LongAdder();
    private final LongAdder writeBytes = new LongAdder();
    private final LongAdder flushes = new LongAdder();
    private final LongAdder discards = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final LongAccumulator peakInFlight = new LongAccumulator(Math::max, 0);

    /** A read or write begins; pair with {@link #end()}. */
    void begin() {
        peakInFlight.accumulate(inFlight.incrementAndGet());
    }

    void end() {
        inFlight.decrementAndGet();
    }

    void read(long bytes) {
        reads.increment();
        readBytes.add(bytes);
    }

    void wrote(long bytes) {
        writes.increment();
        writeBytes.add(bytes);
    }

    void flushed() {
        flushes.increment();
    }

    void discarded() {
        discards.increment();
    }

    void failed() {
        errors.increment();
    }

    /** One {@code name value} line per counter. */
    public String render() {
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
