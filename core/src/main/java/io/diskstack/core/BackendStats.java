package io.diskstack.core;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAccumulator;
import java.util.concurrent.atomic.LongAdder;

/**
 * Request counters and latency histograms of one backend, whatever front end sends the
 * requests, for {@code MNT/.control/DISK/stats} and {@code MNT/.control/metrics}. Discards
 * count every request that may deallocate (a discard, or write-zeroes that may unmap: what a
 * punched hole becomes). Recording takes no lock and allocates nothing.
 */
public final class BackendStats {
    /** The kinds of request whose latencies are kept apart. */
    public enum Op {
        READ("read"), WRITE("write"), WRITE_ZEROES("write-zeroes"), DISCARD("discard"), FLUSH("flush");

        private final String label;

        Op(String label) {
            this.label = label;
        }

        /** The name metrics use: {@code read}, {@code write-zeroes}… */
        public String label() {
            return label;
        }
    }

    private final LongAdder reads = new LongAdder();
    private final LongAdder readBytes = new LongAdder();
    private final LongAdder writes = new LongAdder();
    private final LongAdder writeBytes = new LongAdder();
    private final LongAdder flushes = new LongAdder();
    private final LongAdder discards = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final LongAccumulator peakInFlight = new LongAccumulator(Math::max, 0);
    private final LatencyHistogram[] latencies = new LatencyHistogram[Op.values().length];

    BackendStats() {
        for (int i = 0; i < latencies.length; i++) {
            latencies[i] = new LatencyHistogram();
        }
    }

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

    /** A request of kind {@code op} that started at {@code startNanos} ({@link System#nanoTime()}) is over. */
    void timed(Op op, long startNanos) {
        latencies[op.ordinal()].record(System.nanoTime() - startNanos);
    }

    /** The counters at one moment (each read once; they may be a request apart). */
    public Counters counters() {
        return new Counters(reads.sum(), readBytes.sum(), writes.sum(), writeBytes.sum(), flushes.sum(),
                discards.sum(), errors.sum(), inFlight.get(), peakInFlight.get());
    }

    /** The latency histogram of each kind of request, successful or not. */
    public Map<Op, LatencyHistogram.Snapshot> latencies() {
        Map<Op, LatencyHistogram.Snapshot> out = new EnumMap<>(Op.class);
        for (Op op : Op.values()) {
            out.put(op, latencies[op.ordinal()].snapshot());
        }
        return out;
    }

    /** The values of {@link BackendStats}' counters. */
    public record Counters(long reads, long readBytes, long writes, long writeBytes, long flushes, long discards,
                           long errors, long inFlight, long peakInFlight) {}

    /** One {@code name value} line per counter. */
    public String render() {
        Counters c = counters();
        return "reads " + c.reads() + "\n"
                + "read-bytes " + c.readBytes() + "\n"
                + "writes " + c.writes() + "\n"
                + "write-bytes " + c.writeBytes() + "\n"
                + "flushes " + c.flushes() + "\n"
                + "discards " + c.discards() + "\n"
                + "errors " + c.errors() + "\n"
                + "in-flight " + c.inFlight() + "\n"
                + "peak-in-flight " + c.peakInFlight() + "\n";
    }
}
