package io.diskstack.fuse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Logger;
import jnr.ffi.Pointer;

/**
 * FUSE over io_uring (Linux 6.14+, {@code enable_uring} set on the fuse module): the kernel hands
 * requests to ring entries of ours instead of to {@code read(/dev/fuse)}, one queue per CPU, each
 * request on the queue of the CPU that issued it, and takes a reply and the next request in one
 * {@code io_uring_enter}. Each entry is a thread ({@link UringEntry}), {@code perQueue} of them
 * per queue: a queue serves that many requests at once. Requests on the rings do not go through
 * {@link FuseSession}'s lanes; the entries themselves bound the threads. Forgets and interrupts
 * still come through {@code /dev/fuse}, where the kernel sends them.
 *
 * <p>The kernel holds every request until each CPU's queue has an entry, and turns io_uring off
 * for the connection when a registration fails; so every entry has made its ring and buffers
 * before the INIT reply asks for io_uring ({@link #prepare}), and registers right after it
 * ({@link #start}), or ends ({@link #discard}) if the reply did not ask.
 */
final class FuseUring {
    private static final Logger LOG = Logger.getLogger(FuseUring.class.getName());
    /** {@code FUSE_INIT_EXT}: the INIT messages carry a second word of flags. */
    static final int FUSE_INIT_EXT = 1 << 30;
    /** {@code FUSE_OVER_IO_URING} (bit 41) in that second word. */
    static final int FUSE_OVER_IO_URING = 1 << 9;
    static final Path ENABLE_URING = Path.of("/sys/module/fuse/parameters/enable_uring");
    private static final Path POSSIBLE_CPUS = Path.of("/sys/devices/system/cpu/possible");

    private final FuseSession.LibFuse2 lib;
    private final Pointer session;
    private final int perQueue;
    private final long payloadSize;
    private final List<UringEntry> entries = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final LongAdder served = new LongAdder();
    private final AtomicBoolean announced = new AtomicBoolean();
    private final AtomicBoolean refusalLogged = new AtomicBoolean();
    /** Completed true by {@link #start} (register and serve), false by {@link #discard}. */
    private final CompletableFuture<Boolean> go = new CompletableFuture<>();
    private int queues;
    private ReplyPatch replyPatch;

    /**
     * @param perQueue    entries (threads) per CPU queue
     * @param payloadSize each entry's buffer: the largest request or reply
     */
    FuseUring(FuseSession.LibFuse2 lib, Pointer session, int perQueue, long payloadSize) {
        this.lib = lib;
        this.session = session;
        this.perQueue = perQueue;
        this.payloadSize = payloadSize;
    }

    /** Why the kernel will not offer io_uring, or null if its setting allows it. */
    static String kernelRefusal() {
        try {
            String value = Files.readString(ENABLE_URING).trim();
            return value.equals("Y") || value.equals("1") ? null : "the fuse module's enable_uring is " + value;
        } catch (IOException e) {
            return "this kernel has no FUSE over io_uring (" + ENABLE_URING + " is missing)";
        }
    }

    /** The kernel's queue count, {@code num_possible_cpus()}: the CPUs the possible mask lists. */
    static int possibleCpus() throws IOException {
        String possible = Files.readString(POSSIBLE_CPUS).trim();
        int count = 0;
        try {
            for (String range : possible.split(",")) {
                String[] ends = range.split("-");
                count += Integer.parseInt(ends[ends.length - 1]) - Integer.parseInt(ends[0]) + 1;
            }
        } catch (NumberFormatException e) {
            throw new IOException(POSSIBLE_CPUS + " reads '" + possible + "'");
        }
        return count;
    }

    /**
     * Starts a thread per entry, each of which makes its ring (a ring belongs to the thread that
     * made it) and buffers, then waits for {@link #start}. False, logged in one line, if any
     * entry could not; every thread has then ended and freed what it made.
     */
    boolean prepare(int fuseFd) {
        String failure;
        try {
            queues = possibleCpus();
            CountDownLatch made = new CountDownLatch(queues * perQueue);
            for (int q = 0; q < queues; q++) {
                for (int i = 0; i < perQueue; i++) {
                    UringEntry e = new UringEntry(this, fuseFd, q, made);
                    Thread t = new UringEntry.EntryThread(e, "fuse-uring-" + q + "-" + i);
                    t.start();
                    entries.add(e);
                    threads.add(t);
                }
            }
            made.await();
            failure = entries.stream().map(UringEntry::failure).filter(Objects::nonNull).findFirst().orElse(null);
        } catch (IOException | RuntimeException | OutOfMemoryError e) {
            failure = e.toString();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failure = "interrupted";
        }
        if (failure != null) {
            LOG.warning("FUSE over io_uring: cannot set up " + queues + " queues of " + perQueue + " entries ("
                    + failure + "); serving /dev/fuse");
            discard();
            return false;
        }
        return true;
    }

    /** Ends the entries before they register (the INIT reply did not ask for io_uring). */
    void discard() {
        go.complete(false);
        awaitThreads();
        threads.clear();
    }

    /**
     * Lets the entries register and serve requests until the connection ends; {@code replyPatch}
     * patches OPEN replies as it does on /dev/fuse.
     */
    void start(ReplyPatch replyPatch) {
        this.replyPatch = replyPatch;
        go.complete(true);
    }

    /** Waits for the entries' threads, which end when the connection does. */
    void awaitEnd() {
        awaitThreads();
        if (!threads.isEmpty()) {
            LOG.info("FUSE over io_uring served " + served.sum() + " requests");
        }
    }

    /** Joins every entry thread: none may be in libfuse when the session is torn down. */
    private void awaitThreads() {
        boolean interrupted = false;
        for (Thread t : threads) {
            while (t.isAlive()) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    // ---- what the entries share ----

    /** Blocks until {@link #start} or {@link #discard}: true to register and serve. */
    boolean awaitGo() {
        return go.join();
    }

    FuseSession.LibFuse2 lib() {
        return lib;
    }

    Pointer session() {
        return session;
    }

    long payloadSize() {
        return payloadSize;
    }

    ReplyPatch replyPatch() {
        return replyPatch;
    }

    /** Counts a served request; the first one says, once, that the rings are in use. */
    void served() {
        served.increment();
        if (!announced.get() && announced.compareAndSet(false, true)) {
            LOG.info("FUSE over io_uring: " + queues + " queues of " + perQueue + " entries");
        }
    }

    /** Logs, once per mount, that the kernel refused an entry. */
    void refused(int qid, int errno) {
        if (refusalLogged.compareAndSet(false, true)) {
            LOG.warning("FUSE over io_uring: the kernel refused a ring entry of queue " + qid + " (errno " + errno
                    + "); requests go to /dev/fuse if the rings are not complete");
        }
    }

    /**
     * Where a disk read on this thread may put its data so that its reply need not be copied into
     * the ring entry: the entry's payload buffer, when the thread serves a ring entry's READ of at
     * most that size; else 0 (read into libfuse's buffer). The reply must then carry exactly
     * {@code length} bytes of data.
     */
    static long readBuffer(long length) {
        return Thread.currentThread() instanceof UringEntry.EntryThread t ? t.entry.claimPayload(length) : 0;
    }
}
