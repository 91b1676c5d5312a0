package io.diskstack.core.job;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.Errno;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A background operation on the graph (QEMU's block job): commit, stream, mirror, backup. It
 * copies on its own thread while the disks serve I/O, in chunks between which it honours pause,
 * cancel and its speed limit, and ends either with a graph change recorded in the config
 * ({@link JobStatus#CONCLUDED}) or with nothing changed ({@link JobStatus#ABORTED}).
 *
 * <p>A subclass implements {@link #work()} (copy; call {@link #checkpoint()} between chunks and
 * {@link #copied} after each) and {@link #undo()} (give back what it took: nodes it opened,
 * files it made, permissions it holds).
 */
public abstract class BlockJob {
    private static final Logger LOG = Logger.getLogger(BlockJob.class.getName());
    /** How long a wait for the speed limit or in {@link JobStatus#READY} sleeps between looks at the controls. */
    private static final long POLL_NANOS = 50_000_000L;

    private final String id;
    private final String type;
    private final List<BlockNode> nodes;
    private final JobClock clock;
    private final SpeedLimit speed;
    private final AtomicLong done = new AtomicLong();
    private final AtomicLong total = new AtomicLong();
    private final Object lock = new Object();
    private JobStatus status = JobStatus.CREATED;
    private boolean paused;
    private boolean cancelled;
    private boolean completeAsked;
    private boolean isReady;
    private volatile String error = "";
    private Thread thread;

    /**
     * @param nodes the nodes the job works on: a second job on any of them is refused
     */
    protected BlockJob(String id, String type, List<BlockNode> nodes, JobClock clock, long speed) {
        this.id = id;
        this.type = type;
        this.nodes = List.copyOf(nodes);
        this.clock = clock;
        this.speed = new SpeedLimit(clock);
        this.speed.set(speed);
    }

    public final String id() {
        return id;
    }

    /** {@code commit}, {@code stream}, {@code mirror}, {@code backup}. */
    public final String type() {
        return type;
    }

    public final List<BlockNode> nodes() {
        return nodes;
    }

    public final JobStatus status() {
        synchronized (lock) {
            return status;
        }
    }

    /** Bytes copied so far. */
    public final long done() {
        return done.get();
    }

    /** Bytes to copy, as known now (it grows when writes dirty what was copied). */
    public final long total() {
        return total.get();
    }

    /** The speed limit in bytes per second; 0 for none. */
    public final long speed() {
        return speed.get();
    }

    /** Why the job aborted; empty otherwise. */
    public final String error() {
        return error;
    }

    /** {@code DONE TOTAL PERCENT%}: bytes, and how far along. */
    public final String progress() {
        long d = done();
        long t = Math.max(total(), d);
        long percent = t == 0 ? (status().isFinished() ? 100 : 0) : Math.min(100, d * 100 / t);
        return d + " " + t + " " + percent + "%";
    }

    // ---- the user's controls ----

    public final void setSpeed(long bytesPerSecond) throws BlockIOException {
        if (bytesPerSecond < 0) {
            throw new BlockIOException(Errno.EINVAL, "job '" + id + "': speed must not be negative");
        }
        speed.set(bytesPerSecond);
        wake();
    }

    public final void pause() throws BlockIOException {
        synchronized (lock) {
            checkNotFinished("pause");
            paused = true;
            status = JobStatus.PAUSED;
        }
    }

    public final void resume() throws BlockIOException {
        synchronized (lock) {
            checkNotFinished("resume");
            if (!paused) {
                throw new BlockIOException(Errno.EINVAL, "job '" + id + "' is not paused");
            }
            paused = false;
            status = isReady ? JobStatus.READY : JobStatus.RUNNING;
            lock.notifyAll();
        }
    }

    public final void cancel() throws BlockIOException {
        synchronized (lock) {
            checkNotFinished("cancel");
            cancelled = true;
            lock.notifyAll();
        }
    }

    /** Asks a {@link JobStatus#READY} job to finish (QEMU's job-complete): pivot now. */
    public final void complete() throws BlockIOException {
        synchronized (lock) {
            checkNotFinished("complete");
            if (!isReady) {
                throw new BlockIOException(Errno.EINVAL, "job '" + id + "' is not ready (it is "
                        + status.qemuName() + "): only a ready job can be completed");
            }
            completeAsked = true;
            lock.notifyAll();
        }
    }

    private void checkNotFinished(String action) throws BlockIOException {
        if (status.isFinished()) {
            throw new BlockIOException(Errno.EINVAL, "job '" + id + "' is " + status.qemuName() + ": cannot "
                    + action + " it");
        }
    }

    private void wake() {
        synchronized (lock) {
            lock.notifyAll();
        }
    }

    // ---- for the job's own thread ----

    /** Thrown inside {@link #work()} when the user cancelled. */
    protected static final class Cancelled extends Exception {
        Cancelled() {
            super("cancelled", null, false, false);
        }
    }

    /** Copies: returns normally when the job's work is done and its change made. */
    protected abstract void work() throws Exception;

    /** Gives back what the job took, after a failure or a cancel: the graph as before the job. */
    protected abstract void undo();

    /** Waits while paused; throws {@link Cancelled} once the user cancelled. */
    protected final void checkpoint() throws Cancelled, InterruptedException {
        synchronized (lock) {
            while (paused && !cancelled) {
                lock.wait();
            }
            if (cancelled) {
                throw new Cancelled();
            }
        }
    }

    protected final void addTotal(long bytes) {
        total.addAndGet(bytes);
    }

    protected final void setTotal(long bytes) {
        total.set(bytes);
    }

    /** Counts bytes copied and waits as the speed limit says (waking early for pause and cancel). */
    protected final void copied(long bytes) throws Cancelled, InterruptedException {
        count(bytes);
        pace(bytes);
    }

    /** Counts bytes copied; from any thread. */
    protected final void count(long bytes) {
        done.addAndGet(bytes);
    }

    /** Waits as the speed limit says for starting a copy of this many bytes (waking early for pause and cancel). */
    protected final void pace(long bytes) throws Cancelled, InterruptedException {
        long wait = speed.delayNanos(bytes);
        while (wait > 0) {
            long slice = Math.min(wait, POLL_NANOS);
            clock.sleepNanos(slice);
            wait -= slice;
            checkpoint();
        }
        checkpoint();
    }

    /** The copy is in sync: the job is {@link JobStatus#READY} until completed or cancelled. */
    protected final void ready() {
        synchronized (lock) {
            isReady = true;
            if (!paused && status == JobStatus.RUNNING) {
                status = JobStatus.READY;
            }
        }
    }

    /** True once the user asked a ready job to complete. */
    protected final boolean completeAsked() {
        synchronized (lock) {
            return completeAsked;
        }
    }

    /** Waits a little for a control (complete, cancel, resume) while ready: the job looks at writes again after. */
    protected final void idle() throws Cancelled, InterruptedException {
        synchronized (lock) {
            if (!completeAsked && !cancelled) {
                lock.wait(POLL_NANOS / 1_000_000);
            }
        }
        checkpoint();
    }

    // ---- lifecycle, for the registry ----

    final void start(Runnable onEnd) {
        synchronized (lock) {
            status = JobStatus.RUNNING;
        }
        thread = new Thread(() -> {
            try {
                run();
            } finally {
                onEnd.run();
            }
        }, "job-" + id);
        thread.setDaemon(true);
        thread.start();
    }

    private void run() {
        try {
            work();
            synchronized (lock) {
                status = JobStatus.CONCLUDED;
                lock.notifyAll();
            }
            LOG.info(() -> "job '" + id + "' (" + type + ") concluded");
        } catch (Cancelled e) {
            end("cancelled", null);
        } catch (InterruptedException e) {
            end("interrupted: the mount is stopping", null);
        } catch (Exception | Error e) {
            end(e.getMessage() == null ? e.toString() : e.getMessage(), e);
        }
    }

    private void end(String why, Throwable cause) {
        try {
            undo();
        } catch (RuntimeException | Error e) {
            LOG.log(Level.WARNING, "job '" + id + "': cleaning up after it failed: " + e.getMessage(), e);
        }
        error = why;
        synchronized (lock) {
            status = JobStatus.ABORTED;
            lock.notifyAll();
        }
        if (cause != null && !(cause instanceof java.io.IOException) && !(cause instanceof io.diskstack.core.ConfigException)) {
            LOG.log(Level.WARNING, "job '" + id + "' (" + type + ") aborted: " + why, cause);
        } else {
            LOG.warning("job '" + id + "' (" + type + ") aborted: " + why);
        }
    }

    /** Waits until the job has finished; for tests and for the mount's shutdown. */
    public final JobStatus await(long timeoutMillis) throws InterruptedException {
        long end = System.currentTimeMillis() + timeoutMillis;
        synchronized (lock) {
            while (!status.isFinished()) {
                long left = end - System.currentTimeMillis();
                if (left <= 0) {
                    break;
                }
                lock.wait(left);
            }
            return status;
        }
    }

    /** Cancels and waits for the job's thread: the mount is stopping. */
    final void stop() {
        synchronized (lock) {
            if (status.isFinished()) {
                return;
            }
            cancelled = true;
            lock.notifyAll();
        }
        Thread t = thread;
        if (t != null) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
