package io.diskstack.formats.qcow2;

import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Keeps a freed host cluster from being reused while a request that may still read or write it
 * is in flight. Data I/O runs outside the metadata lock on host offsets looked up under it; if a
 * discard freed such a cluster and another write reused it for a different guest offset, the
 * first request would read or overwrite someone else's data.
 *
 * <p>Epochs, as in RCU: a request counts itself in the current epoch for its whole duration; the
 * epoch advances only when no request of the previous one is left. A cluster freed in epoch E
 * can have been looked up only by requests of epochs up to E, so it may be reused from epoch
 * E+2 on. Entering and leaving cost two atomic adds and no lock.
 */
final class ReuseGuard {
    private final AtomicLong epoch = new AtomicLong();
    private final LongAdder[] active = {new LongAdder(), new LongAdder()};
    /** cluster index → epoch in which it was freed. Under the metadata lock. */
    private final Map<Long, Long> quarantined = new HashMap<>();

    /** Called at the start of a request, before any lookup; pass the result to {@link #exit}. */
    long enter() {
        while (true) {
            long e = epoch.get();
            LongAdder a = active[(int) (e & 1)];
            a.increment();
            if (epoch.get() == e) {
                return e;
            }
            a.decrement(); // the epoch moved on between the read and the count: count in the new one
        }
    }

    void exit(long ticket) {
        active[(int) (ticket & 1)].decrement();
    }

    /** Moves to the next epoch if the previous one has drained; returns the current epoch. */
    private long advance() {
        long e = epoch.get();
        if (active[(int) ((e - 1) & 1)].sum() == 0) {
            epoch.compareAndSet(e, e + 1);
        }
        return epoch.get();
    }

    /** Called under the metadata lock when a cluster's refcount drops to 0. */
    void quarantine(long cluster) {
        quarantined.put(cluster, epoch.get());
    }

    /** Called under the metadata lock by the allocator. */
    boolean isQuarantined(long cluster) {
        if (quarantined.isEmpty()) {
            return false;
        }
        Long freedAt = quarantined.get(cluster);
        if (freedAt == null) {
            return false;
        }
        long now = epoch.get();
        if (now < freedAt + 2) {
            now = advance();
            if (now < freedAt + 2) {
                now = advance();
            }
        }
        if (now >= freedAt + 2) {
            quarantined.remove(cluster);
            return false;
        }
        return true;
    }

    /**
     * Drops every entry: for clusters freed while no request could run (at open, or with the node
     * drained), such as leaks a repair frees, which no request ever looked up.
     */
    void releaseAll() {
        quarantined.clear();
    }

    /** Drops entries no request can reach any more; returns the lowest still quarantined, or -1. */
    long purge() {
        if (quarantined.isEmpty()) {
            return -1;
        }
        long now = advance();
        now = advance();
        long lowest = -1;
        for (Iterator<Map.Entry<Long, Long>> it = quarantined.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Long, Long> e = it.next();
            if (now >= e.getValue() + 2) {
                it.remove();
            } else if (lowest < 0 || e.getKey() < lowest) {
                lowest = e.getKey();
            }
        }
        return lowest;
    }
}
