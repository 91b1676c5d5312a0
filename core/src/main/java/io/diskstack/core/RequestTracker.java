package io.diskstack.core;

import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The in-flight writes of one node, so that read-modify-write and copy-on-read are atomic
 * against other writes to the same bytes (QEMU's tracked and serialising requests).
 *
 * <p>Every write registers its range (and every read, on a node that
 * {@linkplain BlockNode#serialisesOverlappingRequests() serialises overlapping requests}: there
 * writes are serialising, reads are not). A serialising request waits for every earlier overlapping
 * request; any request waits for earlier overlapping serialising ones. Each request waits only
 * for requests that began before it, so there is no deadlock.
 */
final class RequestTracker {
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition finished = lock.newCondition();
    private Tracked head;
    private Tracked tail;
    private int waiting;

    static final class Tracked {
        final long start;
        final long end;
        final boolean serialising;
        Tracked prev;
        Tracked next;

        Tracked(long start, long end, boolean serialising) {
            this.start = start;
            this.end = end;
            this.serialising = serialising;
        }

        boolean conflictsWith(Tracked later) {
            return start < later.end && later.start < end && (serialising || later.serialising);
        }
    }

    Tracked begin(long start, long end, boolean serialising) {
        Tracked t = new Tracked(start, end, serialising);
        lock.lock();
        try {
            if (tail == null) {
                head = tail = t;
            } else {
                tail.next = t;
                t.prev = tail;
                tail = t;
            }
            while (hasEarlierConflict(t)) {
                waiting++;
                try {
                    finished.awaitUninterruptibly();
                } finally {
                    waiting--;
                }
            }
            return t;
        } finally {
            lock.unlock();
        }
    }

    void end(Tracked t) {
        lock.lock();
        try {
            if (t.prev == null) {
                head = t.next;
            } else {
                t.prev.next = t.next;
            }
            if (t.next == null) {
                tail = t.prev;
            } else {
                t.next.prev = t.prev;
            }
            if (waiting > 0) {
                finished.signalAll();
            }
        } finally {
            lock.unlock();
        }
    }

    private boolean hasEarlierConflict(Tracked t) {
        for (Tracked e = t.prev; e != null; e = e.prev) {
            if (e.conflictsWith(t)) {
                return true;
            }
        }
        return false;
    }
}
