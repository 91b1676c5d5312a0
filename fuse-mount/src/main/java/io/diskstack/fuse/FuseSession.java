package io.diskstack.fuse;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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
 */
final class FuseSession {
    private static final Logger LOG = Logger.getLogger(FuseSession.class.getName());
    private static final int EINTR = 4;
    private static final int EAGAIN = 11;
    private static final int ENODEV = 19;
    private static final int INITIAL_THREADS = 8;
    private static final int MAX_THREADS = 256;
    /** struct fuse_buf (LP64): size_t size; enum flags; void *mem; int fd; off_t pos. */
    private static final int FUSE_BUF_SIZE = 40;

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
    private final List<Thread> threads = new ArrayList<>();
    private Pointer session;
    private Pointer channel;
    private long bufferSize;
    private InitReplyPatch initPatch;

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
            initPatch = new InitReplyPatch(channel);
            bufferSize = Math.max(LIB.fuse_chan_bufsize(channel), InitReplyPatch.MAX_REQUEST + 4096);
            synchronized (threads) {
                for (int i = 0; i < INITIAL_THREADS; i++) {
                    startWorker();
                }
            }
            awaitWorkers();
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
        Pointer fuseBuf = Memory.allocateDirect(runtime, FUSE_BUF_SIZE, true);
        Pointer ch = Memory.allocateDirect(runtime, 8, true);
        while (LIB.fuse_session_exited(session) == 0) {
            fuseBuf.putLong(0, bufferSize);
            fuseBuf.putInt(8, 0);
            fuseBuf.putAddress(16, buffer.address());
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
            Pointer replyChannel = ch.getPointer(0);
            if (buffer.getInt(4) == InitReplyPatch.FUSE_INIT) {
                replyChannel = initPatch.channelFor(buffer);
            }
            try {
                LIB.fuse_session_process_buf(session, fuseBuf, replyChannel);
            } finally {
                idle.incrementAndGet();
            }
        }
    }
}
