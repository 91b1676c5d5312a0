package io.diskstack.fuse;

import com.kenai.jffi.MemoryIO;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.Struct;
import jnr.ffi.byref.IntByReference;
import jnr.ffi.byref.PointerByReference;
import jnr.ffi.types.size_t;
import ru.serce.jnrfuse.struct.FuseOperations;

/**
 * Runs libfuse2's request loop on our own Java threads instead of {@code fuse_main}'s.
 *
 * <p>libfuse2's multi-threaded loop starts a thread whenever all are busy and ends one whenever
 * more than ten are idle, so under load it creates and ends threads all the time, and each new
 * native thread must attach to the JVM before jnr-fuse can call into Java. Here threads are Java
 * threads that call {@code fuse_session_receive_buf}/{@code fuse_session_process_buf}
 * themselves: the callbacks run on a thread that is already attached. The pool grows like
 * libfuse's (a new thread when none is free) but never shrinks.
 *
 * <p>Disk I/O runs in lanes, one per disk (the file handle a disk's {@code open} returns, tagged
 * with {@link #LANE_HANDLE}). A lane takes in as many threads as its {@link LaneLimit} allows
 * (one per CPU to start with): a disk request that finds its lane full is copied and parked in
 * the lane, and the thread goes back to reading requests; a lane thread takes the parked
 * requests, in order, before it leaves the lane. More threads would not do quick requests sooner,
 * only make them queue in the scheduler and on the image file's lock, where some wait many
 * milliseconds (the tail latency of concurrent writers). When requests wait on something that
 * serves many at once (a slow device with a queue, a network server), more threads do not make
 * each slower and the limit rises, up to {@link #LANE_THREADS} per lane and {@link #LANE_BUDGET}
 * for all lanes together, so that waiting requests can never take every thread. A lane with no
 * thread always gets one, so every disk keeps moving. The rest of the pool serves the control
 * files, directory lookups and the other disks.
 */
final class FuseSession {
    private static final Logger LOG = Logger.getLogger(FuseSession.class.getName());
    private static final int EINTR = 4;
    private static final int EAGAIN = 11;
    private static final int ENODEV = 19;
    private static final int INITIAL_THREADS = 8;
    private static final int MAX_THREADS = 256;
    /** A file handle with this bit names a lane; {@link DiskstackFs} gives one to each disk. */
    static final long LANE_HANDLE = 1L << 62;
    /**
     * Threads one lane takes in to start with. On 2 vCPUs, fio's 4 KiB random writes at QD16
     * from two jobs had a p99 latency of 30 ms with up to 64 threads in the lane and 2 ms with 2.
     */
    static final int LANE_RUNNERS = Math.max(2, java.lang.Runtime.getRuntime().availableProcessors());
    /**
     * Threads that read requests at once (see {@link #readerLock}): one per two CPUs, and at
     * least two, so that at queue depth 1 one runs the request while the other waits for the next.
     */
    private static final int READERS = Math.max(2, java.lang.Runtime.getRuntime().availableProcessors() / 2);
    /** Threads one lane may hold while its requests wait: as many as the kernel's background (async I/O) requests. */
    static final int LANE_THREADS = 64;
    /** Threads all lanes together may hold (beyond one per lane): the rest stay for everything else. */
    static final int LANE_BUDGET = MAX_THREADS - 32;

    /** The libfuse2 calls behind fuse_main, bound with jnr-ffi. */
    public interface LibFuse2 {
        Pointer fuse_setup(int argc, String[] argv, FuseOperations op, @size_t long opSize,
                           PointerByReference mountpoint, IntByReference multithreaded, Pointer userData);

        void fuse_teardown(Pointer fuse, Pointer mountpoint);

        Pointer fuse_get_session(Pointer fuse);

        Pointer fuse_session_next_chan(Pointer session, Pointer channel);

        @size_t long fuse_chan_bufsize(Pointer channel);

        /** {@code channel} points at a {@code struct fuse_chan *} the call may change. */
        int fuse_session_receive_buf(Pointer session, Pointer buf, Pointer channel);

        void fuse_session_process_buf(Pointer session, Pointer buf, Pointer channel);

        int fuse_session_exited(Pointer session);

        void fuse_session_exit(Pointer session);
    }

    private static final LibFuse2 LIB = LibraryLoader.create(LibFuse2.class).failImmediately().load("fuse");

    private final AtomicInteger idle = new AtomicInteger();
    /**
     * Guards {@link #reading}, the threads in or about to enter {@code fuse_session_receive_buf}
     * (at most {@link #READERS}), and {@link #waitingToRead}, the idle ones waiting to. The kernel
     * wakes a sleeping reader for each request: with every idle thread reading, each request woke
     * one (fio's 4 KiB writes at QD16 spent three times the system time submitting them that they
     * spend with qsd). A thread stays a reader while it only parks requests, so a busy reader
     * takes the next request without sleeping, and stops being one before it runs a request.
     */
    private final Object readerLock = new Object();
    private int reading;
    private int waitingToRead;
    private final List<Thread> threads = new ArrayList<>();
    /** Guards each lane's threads and parked requests, and {@link #laneThreads}. */
    private final Object laneLock = new Object();
    private final Map<Long, Lane> lanes = new ConcurrentHashMap<>();
    private int laneThreads;
    private final java.util.concurrent.ExecutorService laneHelpers = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fuse-lane");
        t.setDaemon(true);
        return t;
    });
    private Pointer session;
    private Pointer channel;
    private long bufferSize;
    private ReplyPatch replyPatch;
    private final int uringEntries;
    private FuseUring uring;

    /** @param uringEntries entries per CPU queue for FUSE over io_uring, or 0 for /dev/fuse only */
    FuseSession(int uringEntries) {
        this.uringEntries = uringEntries;
    }

    /**
     * Mounts and serves until the file system is unmounted; then tears down and returns.
     *
     * @param options FUSE options ({@code -o a,b} pairs); {@code -f} is added
     * @param mounted  called once the mount exists, before any request is served
     */
    void run(FuseOperations operations, Path mountpoint, List<String> options, Runnable mounted) {
        List<String> argv = new ArrayList<>(List.of("diskstack", "-f"));
        argv.addAll(options);
        argv.add(mountpoint.toString());
        PointerByReference mountpointOut = new PointerByReference();
        Pointer fuse = LIB.fuse_setup(argv.size(), argv.toArray(new String[0]), operations,
                Struct.size(operations), mountpointOut, new IntByReference(), null);
        if (fuse == null) {
            throw new IllegalStateException("libfuse could not mount " + mountpoint);
        }
        mounted.run();
        try {
            session = LIB.fuse_get_session(fuse);
            channel = LIB.fuse_session_next_chan(session, null);
            uring = uringEntries > 0 ? new FuseUring(LIB, session, uringEntries, ReplyPatch.MAX_REQUEST) : null;
            replyPatch = new ReplyPatch(channel, uring);
            bufferSize = Math.max(LIB.fuse_chan_bufsize(channel), ReplyPatch.MAX_REQUEST + 4096);
            synchronized (threads) {
                for (int i = 0; i < INITIAL_THREADS; i++) {
                    startWorker();
                }
            }
            awaitWorkers();
            if (uring != null) {
                uring.awaitEnd();
            }
        } finally {
            LIB.fuse_teardown(fuse, mountpointOut.getValue());
        }
    }

    private void startWorker() {
        Thread t = new Thread(this::work, "fuse-" + threads.size());
        t.setDaemon(true);
        try {
            t.start();
        } catch (Throwable e) {
            LOG.warning("cannot start another FUSE thread (" + threads.size() + " running): " + e);
            return;
        }
        threads.add(t);
        idle.incrementAndGet();
    }

    private void awaitWorkers() {
        int joined = 0;
        while (true) {
            Thread next;
            synchronized (threads) {
                if (joined == threads.size()) {
                    return;
                }
                next = threads.get(joined);
            }
            try {
                next.join();
                joined++;
            } catch (InterruptedException e) {
                LIB.fuse_session_exit(session);
            }
        }
    }

    private void work() {
        try {
            serve();
        } catch (Throwable t) {
            // A worker must never vanish silently: the pool would count it as idle for ever.
            idle.decrementAndGet();
            LOG.severe("a FUSE thread failed: " + t);
        }
    }

    private void serve() {
        Runtime runtime = Runtime.getSystemRuntime();
        Pointer buffer = Memory.allocateDirect(runtime, (int) bufferSize);
        Pointer fuseBuf = FuseAbi.newFuseBuf();
        Pointer ch = Memory.allocateDirect(runtime, 8, true);
        boolean reader = false;
        try {
            while (true) {
                if (!reader) {
                    startReading();
                    reader = true;
                }
                if (LIB.fuse_session_exited(session) != 0) {
                    break;
                }
                FuseAbi.setMemory(fuseBuf, buffer.address(), bufferSize);
                ch.putAddress(0, channel.address());
                int res = LIB.fuse_session_receive_buf(session, fuseBuf, ch);
                if (res == -EINTR || res == -EAGAIN) {
                    continue;
                }
                if (res <= 0) {
                    if (res < 0 && res != -ENODEV) {
                        LOG.warning("reading a FUSE request failed: errno " + -res);
                    }
                    LIB.fuse_session_exit(session);
                    break;
                }
                if (idle.decrementAndGet() == 0) {
                    synchronized (threads) {
                        if (threads.size() < MAX_THREADS) {
                            startWorker();
                        }
                    }
                }
                try {
                    Pointer replyChannel = ch.getPointer(0);
                    int opcode = buffer.getInt(4);
                    if (opcode == FuseAbi.FUSE_INIT || opcode == FuseAbi.FUSE_OPEN) {
                        replyChannel = replyPatch.channelFor(opcode, buffer, replyChannel);
                    }
                    Lane lane = fuseBuf.getInt(8) == 0 ? laneOf(buffer, res) : null;
                    Entry entry = lane == null ? null : enterOrPark(lane, buffer, res, replyChannel);
                    if (entry == Entry.PARKED) {
                        continue; // still the reader: the next request may be waiting already
                    }
                    stopReading();
                    reader = false;
                    if (lane == null) {
                        LIB.fuse_session_process_buf(session, fuseBuf, replyChannel);
                    } else if (entry == Entry.RUN) {
                        long start = System.nanoTime();
                        try {
                            LIB.fuse_session_process_buf(session, fuseBuf, replyChannel);
                        } finally {
                            runParked(lane, fuseBuf, System.nanoTime() - start);
                        }
                    } else {
                        runParked(lane, fuseBuf, -1);
                    }
                } finally {
                    idle.incrementAndGet();
                }
            }
        } finally {
            if (reader) {
                stopReading();
            }
        }
    }

    /** Waits until fewer than {@link #READERS} threads read requests, and becomes one of them. */
    private void startReading() {
        boolean interrupted = false;
        synchronized (readerLock) {
            while (reading >= READERS) {
                waitingToRead++;
                try {
                    readerLock.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                } finally {
                    waitingToRead--;
                }
            }
            reading++;
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Stops reading requests, to run one. Another thread takes its place only if no other is
     * reading: at queue depth 1 the one request runs with no thread woken for it but the one the
     * kernel wakes, and the thread comes back to reading when it is done.
     */
    private void stopReading() {
        synchronized (readerLock) {
            reading--;
            if (reading == 0 && waitingToRead > 0) {
                readerLock.notify();
            }
        }
    }

    // ---- lanes ----

    /** A disk's lane: the threads in it, how many it may have, and the requests parked for them. */
    private static final class Lane {
        int threads;
        final LaneLimit limit = new LaneLimit(Math.min(LANE_RUNNERS, LANE_THREADS), LANE_THREADS);
        final ArrayDeque<Parked> parked = new ArrayDeque<>();
    }

    /** A request copied out of a thread's receive buffer, waiting for a thread of its lane. */
    private record Parked(long address, long size, Pointer channel) {}

    /** What a thread does with a disk request: run it, leave it parked, or park it and join the lane. */
    private enum Entry { RUN, PARKED, JOIN }

    /** The lane of a disk request in the buffer, or null if it is not one. */
    private Lane laneOf(Pointer buffer, long size) {
        if (size < FuseAbi.IN_HEADER + 8) {
            return null;
        }
        int opcode = buffer.getInt(4);
        if (opcode != FuseAbi.FUSE_READ && opcode != FuseAbi.FUSE_WRITE && opcode != FuseAbi.FUSE_FSYNC
                && opcode != FuseAbi.FUSE_FALLOCATE) {
            return null;
        }
        long handle = buffer.getLong(FuseAbi.IN_HEADER);
        if ((handle & LANE_HANDLE) == 0) {
            return null;
        }
        return lanes.computeIfAbsent(handle, h -> new Lane());
    }

    /** Under {@link #laneLock}: whether the lane may take in one more thread. */
    private boolean roomIn(Lane lane) {
        return lane.threads < lane.limit.limit() && laneThreads < LANE_BUDGET;
    }

    /**
     * Takes a place in the lane for this thread (RUN), or parks a copy of the request in the
     * lane for one of its threads (PARKED) when the lane, or all lanes together, hold enough. A
     * thread that parks its request behind others while the lane has room joins the lane and
     * serves the parked requests in order (JOIN).
     */
    private Entry enterOrPark(Lane lane, Pointer buffer, long size, Pointer channel) {
        synchronized (laneLock) {
            if (lane.threads == 0 || (lane.parked.isEmpty() && roomIn(lane))) {
                lane.threads++;
                laneThreads++;
                return Entry.RUN;
            }
            long copy = MemoryIO.getInstance().allocateMemory(size, false);
            if (copy == 0) {
                // no memory to park it: run it over the limit rather than leave it unanswered
                lane.threads++;
                laneThreads++;
                return Entry.RUN;
            }
            MemoryIO.getInstance().copyMemory(buffer.address(), copy, size);
            lane.parked.addLast(new Parked(copy, size, channel));
            if (!roomIn(lane)) {
                if (lane.threads >= lane.limit.limit()) {
                    lane.limit.queued(); // the lane's limit, not the budget for all lanes, held it
                }
                return Entry.PARKED;
            }
            lane.threads++;
            laneThreads++;
            return Entry.JOIN;
        }
    }

    /**
     * Serves the lane's parked requests on this thread until none is left, or the lane has more
     * threads than its limit now allows, then leaves the lane. {@code tookNanos}: how long the
     * request this thread has just completed took, or -1 if it completed none. Calls in a helper
     * thread for the parked requests when the limit has room for one more.
     */
    private void runParked(Lane lane, Pointer fuseBuf, long tookNanos) {
        long took = tookNanos;
        while (true) {
            Parked next;
            boolean callHelper = false;
            synchronized (laneLock) {
                if (took >= 0) {
                    lane.limit.completed(took, lane.threads);
                }
                next = lane.threads > lane.limit.limit() ? null : lane.parked.pollFirst();
                if (next == null) {
                    lane.threads--;
                    laneThreads--;
                    return;
                }
                if (!lane.parked.isEmpty() && roomIn(lane)) {
                    lane.threads++;
                    laneThreads++;
                    callHelper = true;
                }
            }
            if (callHelper) {
                startHelper(lane);
            }
            long start = System.nanoTime();
            try {
                if (LIB.fuse_session_exited(session) == 0) {
                    FuseAbi.setMemory(fuseBuf, next.address(), next.size());
                    LIB.fuse_session_process_buf(session, fuseBuf, next.channel());
                }
            } catch (RuntimeException | Error e) {
                // the lane must go on with the others (and give its place back), whatever one does
                LOG.severe("a parked FUSE request failed: " + e);
            } finally {
                MemoryIO.getInstance().freeMemory(next.address());
            }
            took = System.nanoTime() - start;
        }
    }

    /** A thread that has already taken its place in the lane, for the lane's parked requests. */
    private void startHelper(Lane lane) {
        try {
            laneHelpers.execute(() -> {
                try {
                    runParked(lane, FuseAbi.newFuseBuf(), -1);
                } catch (Throwable t) {
                    LOG.severe("a FUSE lane helper failed: " + t);
                    leave(lane);
                }
            });
        } catch (Throwable t) {
            LOG.warning("cannot start a FUSE lane helper: " + t);
            leave(lane);
        }
    }

    private void leave(Lane lane) {
        synchronized (laneLock) {
            lane.threads--;
            laneThreads--;
        }
    }
}
