package io.diskstack.filters.throttle;

import io.diskstack.core.testing.Await;
import io.diskstack.core.testing.Background;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * The time of throttle groups under test: it moves only when the test moves it, and it keeps
 * the time each thread last read. A group reads the clock, under its lock, whenever it judges
 * a request, so a thread's last read is when its request was last judged: a test knows that a
 * waiting request has seen the new time, and when exactly a request was let go, however the
 * threads are scheduled.
 */
final class ManualClock implements LongSupplier {
    private final AtomicLong now = new AtomicLong();
    private final Map<Thread, Long> seen = new ConcurrentHashMap<>();
    private final List<ThrottleGroup> groups = new CopyOnWriteArrayList<>();

    /** A group on this clock. */
    ThrottleGroup group(String id, ThrottleLimits limits) {
        ThrottleGroup g = new ThrottleGroup(id, limits, this);
        groups.add(g);
        return g;
    }

    @Override
    public long getAsLong() {
        long t = now.get();
        seen.put(Thread.currentThread(), t);
        return t;
    }

    long now() {
        return now.get();
    }

    /** Moves the clock on and tells the groups, whose waiting requests then look at it again. */
    void advance(long nanos) {
        now.addAndGet(nanos);
        groups.forEach(ThrottleGroup::clockMoved);
    }

    void advanceTo(long time) {
        advance(time - now.get());
    }

    /** The time {@code thread} last read: when a group last judged its request. */
    long seenBy(Thread thread) {
        return seen.getOrDefault(thread, -1L);
    }

    /** Waits until the task's thread has read the present time (its request was judged now), or the task ended. */
    void awaitSeen(Background<?> task) {
        Await.until("thread '" + task.thread().getName() + "' to read the clock at " + now(),
                () -> task.isDone() || seenBy(task.thread()) == now());
    }
}
