package io.diskstack.filters.throttle;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlProvider;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import java.util.stream.Collectors;

/**
 * A {@code throttle-group} object: limits shared by every throttle node that names it, even
 * under different exports. Each node is a {@link Member}; when requests must wait, the group
 * lets the members go in turn, one request each (QEMU's round robin), so a member with many
 * threads cannot starve one with few. Reads and writes queue separately, as in QEMU, and share
 * the total buckets.
 *
 * <p>A waiting request blocks its calling thread on a condition with a timeout worked out from
 * the buckets: no spinning. Limits change at run time through the control files under
 * {@code MNT/.control/throttle-groups/ID/}, one per limit.
 */
public final class ThrottleGroup implements ControlProvider {
    /** Groups show their limits in {@code MNT/.control/throttle-groups/ID/}. */
    static final String CONTROL_FOLDER = "throttle-groups";

    private final String id;
    private final LongSupplier clock;
    private final ReentrantLock lock = new ReentrantLock();
    private final ThrottleState state;
    private final List<Member> members = new ArrayList<>();
    /** Per direction (0 read, 1 write): the member whose turn it is, or null if none waits. */
    private final Member[] turn = new Member[2];
    private final int[] queued = new int[2];
    private volatile boolean unlimited;

    ThrottleGroup(String id, ThrottleLimits limits) {
        this(id, limits, System::nanoTime);
    }

    ThrottleGroup(String id, ThrottleLimits limits, LongSupplier clock) {
        this.id = id;
        this.clock = clock;
        this.state = new ThrottleState(limits, clock.getAsLong());
        this.unlimited = limits.isUnlimited();
    }

    public String id() {
        return id;
    }

    /** One throttle node's place in the group, with its own queues of waiting requests. */
    static final class Member {
        final String name;
        @SuppressWarnings("unchecked")
        private final ArrayDeque<Condition>[] waiting = new ArrayDeque[] {new ArrayDeque<>(), new ArrayDeque<>()};
        private long throttled;
        private long waitedNanos;
        /** Drains in progress above this member: while positive its requests are not held back. */
        private int draining;

        private Member(String name) {
            this.name = name;
        }
    }

    Member join(String name) {
        lock.lock();
        try {
            Member m = new Member(name);
            members.add(m);
            return m;
        } finally {
            lock.unlock();
        }
    }

    void leave(Member m) {
        lock.lock();
        try {
            int at = members.indexOf(m);
            for (int d = 0; d < 2; d++) {
                if (turn[d] == m) {
                    turn[d] = nextWithWaiters(at, d, m);
                    signalTurn(d);
                }
            }
            members.remove(m);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Returns when a request of {@code bytes} in this direction may go, and counts it: at once
     * while the group's buckets have room and nobody waits, otherwise after the requests queued
     * before it, in round robin between members.
     *
     * @throws InterruptedIOException if the thread is interrupted while it waits
     */
    void intercept(Member m, boolean write, long bytes) throws IOException {
        if (unlimited) {
            return;
        }
        int d = write ? 1 : 0;
        lock.lock();
        try {
            if (m.draining > 0 || (queued[d] == 0 && state.waitNanos(write, clock.getAsLong()) == 0)) {
                state.account(write, bytes);
                return;
            }
            long start = System.nanoTime();
            Condition mine = lock.newCondition();
            m.waiting[d].addLast(mine);
            queued[d]++;
            if (turn[d] == null) {
                turn[d] = m;
            }
            try {
                while (m.draining == 0) {
                    if (turn[d] == m && m.waiting[d].peekFirst() == mine) {
                        long wait = unlimited ? 0 : state.waitNanos(write, clock.getAsLong());
                        if (wait <= 0) {
                            break;
                        }
                        mine.awaitNanos(wait);
                    } else {
                        mine.await();
                    }
                }
            } catch (InterruptedException e) {
                leaveQueue(m, d, mine);
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("throttle group '" + id + "': interrupted while waiting");
            }
            leaveQueue(m, d, mine);
            m.throttled++;
            m.waitedNanos += System.nanoTime() - start;
            state.account(write, bytes);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Takes a request out of its member's queue: normally the head whose turn it was, but a
     * drain or an interrupt can take one from anywhere. The turn moves on if it was this one's.
     */
    private void leaveQueue(Member m, int d, Condition mine) {
        boolean hadTurn = turn[d] == m && m.waiting[d].peekFirst() == mine;
        m.waiting[d].remove(mine);
        queued[d]--;
        if (hadTurn || queued[d] == 0) {
            turn[d] = nextWithWaiters(members.indexOf(m), d, null);
            signalTurn(d);
        }
    }

    /**
     * A backend above the member drains: its waiting requests go now, and new ones are not held
     * back until {@link #drainEnd}, so the drain never waits for the limits (as in QEMU).
     */
    void drainBegin(Member m) {
        lock.lock();
        try {
            m.draining++;
            for (ArrayDeque<Condition> queue : m.waiting) {
                queue.forEach(Condition::signal);
            }
        } finally {
            lock.unlock();
        }
    }

    void drainEnd(Member m) {
        lock.lock();
        try {
            m.draining--;
        } finally {
            lock.unlock();
        }
    }

    /** The first member after index {@code at}, round robin, with requests waiting; null if none. */
    private Member nextWithWaiters(int at, int d, Member skip) {
        int n = members.size();
        for (int i = 1; i <= n; i++) {
            Member c = members.get(Math.floorMod(at + i, n));
            if (c != skip && !c.waiting[d].isEmpty()) {
                return c;
            }
        }
        return null;
    }

    private void signalTurn(int d) {
        Member t = turn[d];
        if (t != null) {
            Condition head = t.waiting[d].peekFirst();
            if (head != null) {
                head.signal();
            }
        }
    }

    // ---- limits ----

    ThrottleLimits limits() {
        lock.lock();
        try {
            return state.limits();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Sets one limit, effective at once for requests waiting now too.
     *
     * @throws BlockIOException EINVAL if the value is malformed or makes the limits invalid
     */
    void set(String key, String text) throws BlockIOException {
        long value;
        try {
            value = ThrottleLimits.parseValue(key, text);
        } catch (IllegalArgumentException e) {
            throw new BlockIOException(Errno.EINVAL, "throttle group '" + id + "': " + e.getMessage());
        }
        lock.lock();
        try {
            ThrottleLimits next = state.limits().with(key, value);
            String problem = next.problem(k -> k);
            if (problem != null) {
                throw new BlockIOException(Errno.EINVAL, "throttle group '" + id + "': " + problem);
            }
            state.configure(next, clock.getAsLong());
            unlimited = next.isUnlimited();
            signalTurn(0);
            signalTurn(1);
        } finally {
            lock.unlock();
        }
    }

    /** Requests that had to wait, how long they waited in all, and how many wait now, for one member. */
    long[] memberStats(Member m) {
        lock.lock();
        try {
            return new long[] {m.throttled, TimeUnit.NANOSECONDS.toMillis(m.waitedNanos),
                m.waiting[0].size() + m.waiting[1].size()};
        } finally {
            lock.unlock();
        }
    }

    /**
     * Tells the requests whose turn it is to look at the clock again. Only a clock that jumps
     * (a test's) needs this; with the system clock they wake when their wait is over.
     */
    void clockMoved() {
        lock.lock();
        try {
            signalTurn(0);
            signalTurn(1);
        } finally {
            lock.unlock();
        }
    }

    // ---- control files ----

    @Override
    public String controlFolder() {
        return CONTROL_FOLDER + "/" + id;
    }

    @Override
    public Map<String, ControlFile> controlFiles() {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (String key : ThrottleLimits.KEYS) {
            files.put(key, ControlFile.command(() -> limits().get(key) + "\n", text -> set(key, text)));
        }
        files.put("members", ControlFile.readOnly(() -> {
            lock.lock();
            try {
                return members.stream().map(m -> m.name + "\n").collect(Collectors.joining());
            } finally {
                lock.unlock();
            }
        }));
        return files;
    }

    @Override
    public String toString() {
        return "throttle-group '" + id + "' (" + limits() + ")";
    }
}
