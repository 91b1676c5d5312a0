package io.diskstack.core;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/** Counts requests inside a backend, so the graph can drain it: stop new ones, wait for the rest. */
final class InFlight {
    private final AtomicInteger count = new AtomicInteger();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private volatile int drainDepth;

    void enter() {
        while (true) {
            if (drainDepth == 0) {
                count.incrementAndGet();
                if (drainDepth == 0) {
                    return;
                }
                exit();
            }
            lock.lock();
            try {
                while (drainDepth > 0) {
                    changed.awaitUninterruptibly();
                }
            } finally {
                lock.unlock();
            }
        }
    }

    void exit() {
        if (count.decrementAndGet() == 0 && drainDepth > 0) {
            lock.lock();
            try {
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Blocks new requests and waits until none is in flight. Pair with {@link #resume()}. */
    void drain() {
        lock.lock();
        try {
            drainDepth++;
            while (count.get() > 0) {
                changed.awaitUninterruptibly();
            }
        } finally {
            lock.unlock();
        }
    }

    void resume() {
        lock.lock();
        try {
            drainDepth--;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    int count() {
        return count.get();
    }
}
