package io.diskstack.fuse;

import com.kenai.jffi.MemoryIO;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Logger;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * FUSE over io_uring (Linux 6.14+, {@code enable_uring} set on the fuse module): the kernel hands
 * requests to ring entries of ours instead of to {@code read(/dev/fuse)}, one queue per CPU, each
 * request on the queue of the CPU that issued it, and takes the reply and the next request in one
 * {@code io_uring_enter}.
 *
 * <p>Each entry here is a thread with its own io_uring and one registered entry (a header buffer
 * and a payload buffer as large as the largest request): it waits for a request, has libfuse2
 * process it, and commits the reply while it fetches the next. libfuse2 parses what
 * {@code /dev/fuse} would have given, so the request is put back together in front of the
 * payload (in header, then the operation's header, then the payload, which is not moved), and the
 * reply comes back through a channel of ours whose send function copies it into the entry.
 * Forgets and interrupts still come through {@code /dev/fuse}, as the kernel sends them there.
 *
 * <p>The kernel holds every request until each CPU's queue has an entry, and turns io_uring off
 * for the connection if a registration fails; so every thread has made its ring and buffers
 * before the INIT reply asks for io_uring ({@link #prepare}), and registers right after it
 * ({@link #start}).
 */
final class FuseUring {
    private static final Logger LOG = Logger.getLogger(FuseUring.class.getName());
    /** {@code FUSE_INIT_EXT}: the INIT messages carry a second word of flags. */
    static final int FUSE_INIT_EXT = 1 << 30;
    /** {@code FUSE_OVER_IO_URING} (bit 41) in that second word. */
    static final int FUSE_OVER_IO_URING = 1 << 9;
    static final Path ENABLE_URING = Path.of("/sys/module/fuse/parameters/enable_uring");
    private static final int IORING_OP_URING_CMD = 46;
    private static final int CMD_REGISTER = 1;
    private static final int CMD_COMMIT_AND_FETCH = 2;
    /** struct fuse_uring_req_header: in/out header (128), operation header (128), entry in/out. */
    private static final int OP_IN = 128;
    private static final int ENT_IN_OUT = 256;
    private static final int HEADER_SIZE = 288;
    private static final int IN_HEADER = 40;
    private static final int OUT_HEADER = 16;
    /** The header, the iovecs and the rebuilt request prefix live in the page before the payload. */
    private static final int PREFIX = 4096;
    private static final int IOVECS = 512;
    private static final int FUSE_READ = 15;
    private static final int EIO = 5;
    private static final int ENOTCONN = 107;
    private static final int ECANCELED = 125;
    private static final MemoryIO MEMORY = MemoryIO.getInstance();

    private final int queues;
    private final int perQueue;
    private final long payloadSize;
    private final List<Entry> entries = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final LongAdder served = new LongAdder();
    /** Completed true by {@link #start} (register and serve), false by {@link #discard}. */
    private final CompletableFuture<Boolean> go = new CompletableFuture<>();
    private final FuseSession.LibFuse2 lib;
    private final Pointer session;
    private ReplyPatch replyPatch;

    /**
     * @param perQueue entries (threads) per CPU queue: how many requests from one CPU are
     *                 served at once
     */
    FuseUring(FuseSession.LibFuse2 lib, Pointer session, int perQueue, long payloadSize) {
        this.lib = lib;
        this.session = session;
        this.queues = possibleCpus();
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

    /** The kernel's queue count: one per possible CPU ({@code nr_cpu_ids}). */
    static int possibleCpus() {
        try {
            String possible = Files.readString(Path.of("/sys/devices/system/cpu/possible")).trim();
            int max = 0;
            for (String range : possible.split(",")) {
                String[] ends = range.split("-");
                max = Math.max(max, Integer.parseInt(ends[ends.length - 1]));
            }
            return max + 1;
        } catch (IOException | RuntimeException e) {
            return java.lang.Runtime.getRuntime().availableProcessors();
        }
    }

    /**
     * Starts a thread per entry, each of which makes its ring (a ring belongs to the thread that
     * made it) and buffers, then waits for {@link #start}; false (logged) if any entry could not,
     * and then every thread ends and frees what it made.
     */
    boolean prepare(int fuseFd) {
        CountDownLatch made = new CountDownLatch(queues * perQueue);
        for (int q = 0; q < queues; q++) {
            for (int i = 0; i < perQueue; i++) {
                Entry e = new Entry(fuseFd, q, made);
                Thread t = new EntryThread(e, "fuse-uring-" + q + "-" + i);
                entries.add(e);
                threads.add(t);
                t.start();
            }
        }
        String failure;
        try {
            made.await();
            failure = entries.stream().map(e -> e.failure).filter(Objects::nonNull).findFirst().orElse(null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            failure = "interrupted";
        }
        if (failure != null) {
            LOG.warning("FUSE over io_uring: cannot set up " + queues + " queues of " + perQueue
                    + " entries (" + failure + "); serving /dev/fuse");
            discard();
            return false;
        }
        return true;
    }

    /** Ends the entries' threads before they register (the INIT reply did not ask for io_uring). */
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
        LOG.info("FUSE over io_uring: " + queues + " queues of " + perQueue + " entries");
    }

    /** Waits for the entries' threads, which end when the connection does. */
    void awaitEnd() {
        awaitThreads();
        if (!threads.isEmpty()) {
            LOG.info("FUSE over io_uring served " + served.sum() + " requests");
        }
    }

    private void awaitThreads() {
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /**
     * Where a disk read on this thread may put its data so that its reply need not be copied into
     * the ring entry: the entry's payload buffer, when the thread serves a ring entry's READ of at
     * most that size; else 0 (read into libfuse's buffer). The reply must then carry exactly
     * {@code length} bytes of data.
     */
    static long readBuffer(long length) {
        return Thread.currentThread() instanceof EntryThread t ? t.entry.claimPayload(length) : 0;
    }

    /** The thread of a ring entry. */
    private static final class EntryThread extends Thread {
        final Entry entry;

        EntryThread(Entry entry, String name) {
            super(entry, name);
            this.entry = entry;
            setDaemon(true);
        }
    }

    /** One registered ring entry and the thread that serves it. */
    private final class Entry implements Runnable {
        private final int fuseFd;
        private final int qid;
        private final CountDownLatch made;
        private final ReplyPatch.Send send = this::send;
        volatile String failure;
        private IoUring ring;
        private long area;
        private long header;
        private long payload;
        private Pointer fuseBuf;
        private ReplyPatch.ChannelOps ops;
        private Pointer channel;
        private int opcode;
        private boolean replied;
        /** Bytes a READ put straight into the payload ({@link #readBuffer}), or 0. */
        private long readInPlace;

        Entry(int fuseFd, int qid, CountDownLatch made) {
            this.fuseFd = fuseFd;
            this.qid = qid;
            this.made = made;
        }

        private void make() throws IOException {
            ring = new IoUring(2);
            area = IoUring.mapAnonymous(PREFIX + payloadSize);
            header = area;
            payload = area + PREFIX;
            MEMORY.putLong(area + IOVECS, header);
            MEMORY.putLong(area + IOVECS + 8, HEADER_SIZE);
            MEMORY.putLong(area + IOVECS + 16, payload);
            MEMORY.putLong(area + IOVECS + 24, payloadSize);
            Runtime runtime = Runtime.getSystemRuntime();
            fuseBuf = Memory.allocateDirect(runtime, 40, true);
            ops = new ReplyPatch.ChannelOps(runtime);
            ops.send.set(send);
            channel = ReplyPatch.newChannel(ops, fuseFd, payloadSize + PREFIX);
        }

        @Override
        public void run() {
            try {
                try {
                    make();
                } catch (Throwable t) {
                    failure = String.valueOf(t.getMessage());
                    return;
                } finally {
                    made.countDown();
                }
                if (!go.join()) {
                    return;
                }
                submit(CMD_REGISTER, 0);
                while (true) {
                    int res = ring.await();
                    if (res < 0) {
                        if (res != -ENOTCONN && res != -ECANCELED) {
                            LOG.warning("FUSE over io_uring: queue " + qid + " entry ended: errno " + -res);
                        }
                        return;
                    }
                    long commitId = MEMORY.getLong(header + ENT_IN_OUT + 8);
                    long unique = MEMORY.getLong(header + 8);
                    try {
                        serve(unique);
                    } catch (RuntimeException | Error e) {
                        // the entry must go on (an unanswered request would hang its caller)
                        LOG.severe("FUSE over io_uring: request " + unique + " failed: " + e);
                        replyError(unique, EIO);
                    }
                    served.increment();
                    submit(CMD_COMMIT_AND_FETCH, commitId);
                }
            } catch (Throwable t) {
                LOG.severe("FUSE over io_uring: queue " + qid + " entry failed: " + t);
            } finally {
                free();
            }
        }

        private void submit(int command, long commitId) {
            long sqe = ring.nextSqe();
            MEMORY.putByte(sqe, (byte) IORING_OP_URING_CMD);
            MEMORY.putInt(sqe + 4, fuseFd);
            MEMORY.putInt(sqe + 8, command);
            MEMORY.putLong(sqe + 16, area + IOVECS);
            MEMORY.putInt(sqe + 24, 2);
            // struct fuse_uring_cmd_req in the entry's command area: flags, commit_id, qid
            MEMORY.putLong(sqe + 56, commitId);
            MEMORY.putShort(sqe + 64, (short) qid);
        }

        /** Rebuilds the request as /dev/fuse gives it, in front of the payload, and has libfuse serve it. */
        private void serve(long unique) {
            int length = MEMORY.getInt(header);
            opcode = MEMORY.getInt(header + 4);
            int payloadLength = MEMORY.getInt(header + ENT_IN_OUT + 16);
            int opLength = length - IN_HEADER - payloadLength;
            if (opLength < 0 || opLength > ENT_IN_OUT - OP_IN || payloadLength > payloadSize) {
                LOG.warning("FUSE over io_uring: request " + unique + " (opcode " + opcode + ") has length "
                        + length + " with " + payloadLength + " bytes of payload; answered EIO");
                replyError(unique, EIO);
                return;
            }
            long start = payload - IN_HEADER - opLength;
            MEMORY.copyMemory(header, start, IN_HEADER);
            MEMORY.copyMemory(header + OP_IN, start + IN_HEADER, opLength);
            fuseBuf.putLong(0, length);
            fuseBuf.putInt(8, 0);
            fuseBuf.putAddress(16, start);
            replied = false;
            readInPlace = 0;
            lib.fuse_session_process_buf(session, fuseBuf, channel);
            if (!replied) {
                replyError(unique, EIO);
            }
        }

        private void replyError(long unique, int errno) {
            MEMORY.putInt(header, OUT_HEADER);
            MEMORY.putInt(header + 4, -errno);
            MEMORY.putLong(header + 8, unique);
            MEMORY.putInt(header + ENT_IN_OUT + 16, 0);
        }

        /** libfuse's reply: the out header goes to the entry's header, the arguments to its payload. */
        private int send(Pointer ch, Pointer iov, long count) {
            try {
                long outHeader = iov.getLong(0);
                MEMORY.copyMemory(outHeader, header, OUT_HEADER);
                long total = 0;
                if (readInPlace > 0 && count == 2 && iov.getLong(24) == readInPlace) {
                    // the data is already in the payload (readBuffer); libfuse's copy of it is not
                    MEMORY.putInt(header + ENT_IN_OUT + 16, (int) readInPlace);
                    replied = true;
                    return 0;
                }
                for (int i = 1; i < count; i++) {
                    long base = iov.getLong(16L * i);
                    long len = iov.getLong(16L * i + 8);
                    if (total + len > payloadSize) {
                        return -EIO;
                    }
                    MEMORY.copyMemory(base, payload + total, len);
                    total += len;
                }
                if (opcode == ReplyPatch.FUSE_OPEN && MEMORY.getInt(header + 4) == 0) {
                    replyPatch.allowParallelDirectWrites(payload, total);
                }
                MEMORY.putInt(header + ENT_IN_OUT + 16, (int) total);
                replied = true;
                return 0;
            } catch (Throwable t) {
                LOG.warning("FUSE over io_uring: a reply failed: " + t);
                return -EIO;
            }
        }

        long claimPayload(long length) {
            if (opcode != FUSE_READ || length > payloadSize) {
                return 0;
            }
            readInPlace = length;
            return payload;
        }

        private void free() {
            if (ring != null) {
                ring.close();
            }
            if (area != 0) {
                IoUring.unmap(area, PREFIX + payloadSize);
            }
        }
    }
}
