package io.diskstack.core.snapshot;

import io.diskstack.core.ReadOnlyView;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Open views shared by everyone who reads the same snapshot, and kept open for a moment after the
 * last one lets go: opening a view may cost seconds (luks derives its key again), and {@code cmp}
 * or {@code dd} open a file several times in a row. A view is opened once, outside the cache's
 * lock, so opening one never holds up reads of another.
 */
public final class ViewCache implements AutoCloseable {
    /** Runs a task later, cancellably. */
    public interface Scheduler {
        /** Runs {@code task} after the linger time; returns what cancels it. */
        Runnable later(Runnable task);
    }

    /** Opens a view; called once per cache entry. */
    public interface Opener {
        ReadOnlyView open() throws IOException;
    }

    private final Scheduler scheduler;
    private final AutoCloseable stopScheduler;
    private final Map<Object, Entry> entries = new HashMap<>();
    private boolean closed;

    /** A cache whose idle views close {@code lingerMillis} after their last reader. */
    public static ViewCache withLinger(long lingerMillis) {
        ScheduledThreadPoolExecutor executor = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "snapshot-view-linger");
            t.setDaemon(true);
            return t;
        });
        executor.setRemoveOnCancelPolicy(true);
        return new ViewCache(task -> cancelOf(executor, task, lingerMillis), executor::shutdownNow);
    }

    private static Runnable cancelOf(ScheduledExecutorService executor, Runnable task, long lingerMillis) {
        var future = executor.schedule(task, lingerMillis, TimeUnit.MILLISECONDS);
        return () -> future.cancel(false);
    }

    /** A cache that lingers with {@code scheduler} (tests run its tasks by hand). */
    public ViewCache(Scheduler scheduler, AutoCloseable stopScheduler) {
        this.scheduler = scheduler;
        this.stopScheduler = stopScheduler;
    }

    /**
     * The open view for {@code key} (equal keys mean the same content), opened with
     * {@code opener} if there is none; close the lease when done reading.
     */
    public Lease acquire(Object key, Opener opener) throws IOException {
        Entry e;
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("the snapshot views are closed");
            }
            e = entries.computeIfAbsent(key, Entry::new);
            e.users++;
            if (e.cancelLinger != null) {
                e.cancelLinger.run();
                e.cancelLinger = null;
            }
        }
        try {
            return new Lease(e, e.view(opener));
        } catch (IOException | RuntimeException | Error failure) {
            release(e);
            throw failure;
        }
    }

    /** How many views are open now, in use or lingering. */
    public synchronized int openViews() {
        return (int) entries.values().stream().filter(e -> e.view != null).count();
    }

    private void release(Entry e) {
        synchronized (this) {
            if (--e.users > 0 || entries.get(e.key) != e) {
                return;
            }
            if (e.view != null && !closed) {
                e.cancelLinger = scheduler.later(() -> expire(e));
                return;
            }
            entries.remove(e.key);
        }
        e.close();
    }

    private void expire(Entry e) {
        synchronized (this) {
            if (e.users > 0 || entries.get(e.key) != e) {
                return;
            }
            entries.remove(e.key);
        }
        e.close();
    }

    /** Closes every view, in use or not, and stops lingering: the mount is going away. */
    @Override
    public void close() {
        List<Entry> all;
        synchronized (this) {
            closed = true;
            all = new ArrayList<>(entries.values());
            entries.clear();
        }
        all.forEach(Entry::close);
        try {
            stopScheduler.close();
        } catch (Exception e) {
            throw new IllegalStateException("cannot stop the linger thread", e);
        }
    }

    private static final class Entry {
        final Object key;
        int users;
        Runnable cancelLinger;
        private volatile ReadOnlyView view;

        Entry(Object key) {
            this.key = key;
        }

        synchronized ReadOnlyView view(Opener opener) throws IOException {
            if (view == null) {
                view = opener.open();
            }
            return view;
        }

        synchronized void close() {
            if (view != null) {
                view.close();
                view = null;
            }
        }
    }

    /** One reader's use of a view. Close it once. */
    public final class Lease implements AutoCloseable {
        private final Entry entry;
        private final ReadOnlyView view;

        private Lease(Entry entry, ReadOnlyView view) {
            this.entry = entry;
            this.view = view;
        }

        public long size() {
            return view.size();
        }

        /** Fills {@code dst} with the bytes at {@code offset}, within {@link #size()}. */
        public void read(long offset, ByteBuffer dst) throws IOException {
            view.read(offset, dst);
        }

        @Override
        public void close() {
            release(entry);
        }
    }
}
