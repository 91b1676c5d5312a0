package io.diskstack.formats.qcow2;

import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * Keeps a freed host cluster from being reused while a request that may still read or write it
 * is in flight. Data I/O runs outside the metadata lock on host offsets looked up under it; if a
 * discard freed such a cluster and another write reused it for a different guest offset, the
 * first request would read or overwrite someone else's data. So every request holds a ticket,
 * freed clusters remember the newest ticket given out when they were freed, and the allocator
 * skips them until every request that old has finished.
 */
final class ReuseGuard {
    private final TreeMap<Long, Integer> inFlight = new TreeMap<>();
    private long nextTicket = 1;
    /** cluster index → the newest ticket handed out when it was freed. Under the metadata lock. */
    private final Map<Long, Long> quarantined = new HashMap<>();

    synchronized long enter() {
        long t = nextTicket++;
        inFlight.merge(t, 1, Integer::sum);
        return t;
    }

    synchronized void exit(long ticket) {
        inFlight.computeIfPresent(ticket, (k, v) -> v == 1 ? null : v - 1);
    }

    private synchronized long oldestInFlight() {
        return inFlight.isEmpty() ? Long.MAX_VALUE : inFlight.firstKey();
    }

    private synchronized long newestTicket() {
        return nextTicket - 1;
    }

    /** Called under the metadata lock when a cluster's refcount drops to 0. */
    void quarantine(long cluster) {
        quarantined.put(cluster, newestTicket());
    }

    /** Called under the metadata lock by the allocator. */
    boolean isQuarantined(long cluster) {
        Long freedAt = quarantined.get(cluster);
        if (freedAt == null) {
            return false;
        }
        if (oldestInFlight() > freedAt) {
            quarantined.remove(cluster);
            return false;
        }
        return true;
    }

    /** Drops entries no request can reach any more; returns the lowest still quarantined, or -1. */
    long purge() {
        long oldest = oldestInFlight();
        long lowest = -1;
        for (Iterator<Map.Entry<Long, Long>> it = quarantined.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Long, Long> e = it.next();
            if (oldest > e.getValue()) {
                it.remove();
            } else if (lowest < 0 || e.getKey() < lowest) {
                lowest = e.getKey();
            }
        }
        return lowest;
    }

    boolean isEmpty() {
        return quarantined.isEmpty();
    }
}
