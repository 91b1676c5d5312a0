package io.diskstack.fuse;

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

    String render() {
        return "reads " + reads.sum() + "\n"
                + "read-bytes " + readBytes.sum() + "\n"
                + "writes " + writes.sum() + "\n"
                + "write-bytes " + writeBytes.sum() + "\n"
                + "flushes " + flushes.sum() + "\n"
                + "discards " + discards.sum() + "\n"
                + "errors " + errors.sum() + "\n";
    }
}
