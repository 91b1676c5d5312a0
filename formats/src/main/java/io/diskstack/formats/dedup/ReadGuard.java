package io.diskstack.formats.dedup;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Epochs, as in RCU, so that a block freed while a read that looked it up still runs is not
 * reused under that read: a read counts itself in the current epoch for its whole duration, and
 * the epoch moves on only when no read of the previous one is left. A block freed in epoch E was
 * looked up only by reads of epochs up to E, so it is safe from epoch E + 2 on. Entering and
 * leaving cost an atomic add each, no lock.
 */
final class ReadGuard {
    private final AtomicLong epoch = new AtomicLong();
    private final LongAdder[] active = {new LongAdder(), new LongAdder()};

    long enter() {
        while (true) {
            long e = epoch.get();
            LongAdder a = active[(int) (e & 1)];
            a.increment();
            if (epoch.get() == e) {
                return e;
            }
            a.decrement();
        }
    }

    void exit(long ticket) {
        active[(int) (ticket & 1)].decrement();
    }

    long current() {
        return epoch.get();
    }

    /** Moves on as far as finished reads allow (at most two epochs); returns the epoch. */
    long advance() {
        for (int i = 0; i < 2; i++) {
            long e = epoch.get();
            if (active[(int) ((e - 1) & 1)].sum() == 0) {
                epoch.compareAndSet(e, e + 1);
            }
        }
        return epoch.get();
    }
}
