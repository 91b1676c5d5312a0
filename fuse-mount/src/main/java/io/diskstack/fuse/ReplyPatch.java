package io.diskstack.fuse;

import com.kenai.jffi.MemoryIO;
import java.util.logging.Logger;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.Struct;
import jnr.ffi.annotations.Delegate;
import jnr.ffi.types.size_t;

/**
 * Gives libfuse2 what libfuse3 negotiates, by rewriting two of its replies on their way to the
 * kernel. The request is handed to libfuse with a channel of ours whose send function does it.
 *
 * <p>INIT: libfuse2 speaks FUSE protocol 7.12, which caps reads and writes at 128 KiB, so a 1 MiB
 * direct write costs eight round trips (7.28 added {@code max_pages}); and it cannot ask for
 * asynchronous direct I/O (7.22), without which the kernel serves each libaio direct read inside
 * {@code io_submit}, so queue depth 16 acts as 1. The reply is rewritten to say 7.28 (7.38 if the
 * kernel speaks it) and 256 pages. Every request libfuse2 parses keeps its 7.12 layout up to 7.38
 * (later versions only appended fields, used former padding, or added opcodes and flags the
 * kernel uses only when asked for; libfuse2 answers unknown opcodes with ENOSYS), so nothing else
 * changes. The patch applies only if the kernel offers max_pages; otherwise libfuse's reply goes
 * out untouched. With a {@link FuseUring}, the patched reply also asks for FUSE over io_uring if
 * the kernel offers it and every ring entry is ready, and the entries start once it is sent.
 *
 * <p>OPEN (7.38 only): the kernel holds a file's inode lock across a direct write, so writers
 * to one disk queue behind each other (a synchronous writer for its whole round trip, an
 * asynchronous one while it submits) unless the open reply says
 * {@code FOPEN_PARALLEL_DIRECT_WRITES}, which libfuse2's {@code fuse_file_info} cannot express.
 * Replies to opens of a disk in direct-I/O mode get that flag; the block layer already serves
 * concurrent and overlapping writes (asynchronous direct I/O sends them in parallel anyway).
 */
final class ReplyPatch {
    private static final Logger LOG = Logger.getLogger(ReplyPatch.class.getName());
    private static final int IN_HEADER = FuseAbi.IN_HEADER;
    private static final int OUT_HEADER = FuseAbi.OUT_HEADER;
    private static final int INIT_OUT_SIZE = 64;
    private static final int FUSE_ASYNC_DIO = 1 << 15;
    private static final int FUSE_MAX_PAGES = 1 << 22;
    private static final int PATCHED_MINOR = 28;
    private static final int PARALLEL_WRITES_MINOR = 38;
    private static final int OPEN_OUT_SIZE = 16;
    private static final int FOPEN_DIRECT_IO = 1;
    private static final int FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6;
    static final int MAX_PAGES = 256;
    static final int MAX_REQUEST = MAX_PAGES * 4096;

    /** libfuse2's struct fuse_chan_ops: receive, send, destroy. */
    public static final class ChannelOps extends Struct {
        public final Function<Receive> receive = new Function<>(Receive.class);
        public final Function<Send> send = new Function<>(Send.class);
        public final Function<Destroy> destroy = new Function<>(Destroy.class);

        ChannelOps(Runtime runtime) {
            super(runtime);
        }
    }

    public interface Receive {
        @Delegate
        int receive(Pointer channelRef, Pointer buf, @size_t long size);
    }

    public interface Send {
        @Delegate
        int send(Pointer channel, Pointer iov, @size_t long count);
    }

    public interface Destroy {
        @Delegate
        void destroy(Pointer channel);
    }

    /** The libc and libfuse calls this needs. */
    public interface Native {
        Pointer fuse_chan_new(ChannelOps ops, int fd, @size_t long bufsize, Pointer data);

        int fuse_chan_fd(Pointer channel);

        long writev(int fd, Pointer iov, int count);

        long write(int fd, Pointer buf, @size_t long count);
    }

    private static final Native NATIVE = LibraryLoader.create(Native.class).library("fuse").library("c").load();

    private final Runtime runtime = Runtime.getSystemRuntime();
    private final int fd;
    private final ChannelOps ops;
    private final Send send = this::send;
    private final Pointer channel;
    private final ChannelOps openOps;
    private final Send openSend = this::sendOpen;
    private final Pointer openChannel;
    private final FuseUring uring;
    private volatile boolean uringReady;
    private volatile boolean uringStarted;
    private volatile boolean applies;
    private volatile int patchedMinor;
    private volatile int asyncDio;
    private volatile boolean applied;
    private volatile boolean parallelWrites;

    /** @param uring FUSE over io_uring to ask for in the INIT reply, or null for /dev/fuse only */
    ReplyPatch(Pointer realChannel, FuseUring uring) {
        this.fd = NATIVE.fuse_chan_fd(realChannel);
        this.uring = uring;
        this.ops = new ChannelOps(runtime);
        ops.send.set(send);
        this.channel = newChannel(ops, fd, MAX_REQUEST + 4096);
        this.openOps = new ChannelOps(runtime);
        openOps.send.set(openSend);
        this.openChannel = newChannel(openOps, fd, MAX_REQUEST + 4096);
    }

    /**
     * The channel to process a request with: ours for a reply to rewrite (INIT, and OPEN once
     * 7.38 is agreed), else {@code libfuseChannel}.
     */
    Pointer channelFor(int opcode, Pointer request, Pointer libfuseChannel) {
        if (opcode == FuseAbi.FUSE_OPEN) {
            return parallelWrites ? openChannel : libfuseChannel;
        }
        if (opcode != FuseAbi.FUSE_INIT) {
            return libfuseChannel;
        }
        int kernelMinor = request.getInt(IN_HEADER + 4);
        int kernelFlags = request.getInt(IN_HEADER + 12);
        applies = kernelMinor >= PATCHED_MINOR && (kernelFlags & FUSE_MAX_PAGES) != 0;
        patchedMinor = kernelMinor >= PARALLEL_WRITES_MINOR ? PARALLEL_WRITES_MINOR : PATCHED_MINOR;
        asyncDio = kernelFlags & FUSE_ASYNC_DIO;
        if (uring != null) {
            boolean offered = (kernelFlags & FuseUring.FUSE_INIT_EXT) != 0
                    && (request.getInt(IN_HEADER + 16) & FuseUring.FUSE_OVER_IO_URING) != 0;
            if (!applies || !offered) {
                String refusal = FuseUring.kernelRefusal();
                LOG.warning("FUSE over io_uring was asked for, but " + (refusal != null ? refusal
                        : "the kernel does not offer it") + "; serving /dev/fuse");
            } else {
                uringReady = uring.prepare(fd);
            }
        }
        return channel;
    }

    /** A libfuse2 channel on the FUSE device whose replies go to {@code ops}' send function. */
    static Pointer newChannel(ChannelOps ops, int fd, long bufferSize) {
        return NATIVE.fuse_chan_new(ops, fd, bufferSize, null);
    }

    boolean applied() {
        return applied;
    }

    /** Sends the INIT reply, patched if it succeeds and the kernel can take the patch. */
    private int send(Pointer ch, Pointer iov, long count) {
        try {
            if (applies && count == 2) {
                Pointer header = iov.getPointer(0);
                Pointer arg = iov.getPointer(16);
                long argLength = iov.getLong(24);
                if (header.getInt(4) == 0 && argLength >= 24) {
                    return sendPatched(header, arg, (int) argLength);
                }
            }
            long n = NATIVE.writev(fd, iov, (int) count);
            return n < 0 ? -runtime.getLastError() : 0;
        } catch (Throwable t) {
            LOG.warning("FUSE INIT reply failed: " + t);
            return -FuseAbi.EIO;
        } finally {
            if (uringReady && !uringStarted) {
                // the reply that went out (if any) did not ask for io_uring: the entries must end
                uring.discard();
            }
        }
    }

    private int sendPatched(Pointer header, Pointer arg, int argLength) {
        Pointer out = Memory.allocateDirect(runtime, OUT_HEADER + INIT_OUT_SIZE, true);
        byte[] copy = new byte[OUT_HEADER];
        header.get(0, copy, 0, OUT_HEADER);
        out.put(0, copy, 0, OUT_HEADER);
        byte[] init = new byte[Math.min(argLength, INIT_OUT_SIZE)];
        arg.get(0, init, 0, init.length);
        out.put(OUT_HEADER, init, 0, init.length);
        out.putInt(0, OUT_HEADER + INIT_OUT_SIZE);
        out.putInt(OUT_HEADER + 4, patchedMinor);
        out.putInt(OUT_HEADER + 12, out.getInt(OUT_HEADER + 12) | FUSE_MAX_PAGES | asyncDio);
        out.putInt(OUT_HEADER + 20, MAX_REQUEST);
        out.putInt(OUT_HEADER + 24, 1);
        out.putShort(OUT_HEADER + 28, (short) MAX_PAGES);
        if (uringReady) {
            out.putInt(OUT_HEADER + 12, out.getInt(OUT_HEADER + 12) | FuseUring.FUSE_INIT_EXT);
            out.putInt(OUT_HEADER + 32, FuseUring.FUSE_OVER_IO_URING);
        }
        long n = NATIVE.write(fd, out, OUT_HEADER + INIT_OUT_SIZE);
        if (n < 0) {
            return -runtime.getLastError();
        }
        applied = true;
        parallelWrites = patchedMinor >= PARALLEL_WRITES_MINOR;
        if (uringReady) {
            // the kernel now holds every request until each CPU's queue has an entry
            uringStarted = true;
            uring.start(this);
        }
        return 0;
    }

    /**
     * Marks a successful OPEN reply's {@code fuse_open_out} at {@code openOut} for parallel direct
     * writes if the connection speaks 7.38 and the file is a disk (a lane handle) in direct-I/O mode.
     */
    void allowParallelDirectWrites(long openOut, long length) {
        if (!parallelWrites || length != OPEN_OUT_SIZE) {
            return;
        }
        MemoryIO memory = MemoryIO.getInstance();
        int flags = memory.getInt(openOut + 8);
        if ((flags & FOPEN_DIRECT_IO) != 0 && (memory.getLong(openOut) & FuseSession.LANE_HANDLE) != 0) {
            memory.putInt(openOut + 8, flags | FOPEN_PARALLEL_DIRECT_WRITES);
        }
    }

    /** Sends an OPEN reply; one for a disk (a lane handle) in direct-I/O mode gets parallel writes. */
    private int sendOpen(Pointer ch, Pointer iov, long count) {
        try {
            if (count == 2 && iov.getPointer(0).getInt(4) == 0) {
                // the reply is libfuse's own (on its stack until this call returns): patch it in place
                allowParallelDirectWrites(iov.getPointer(16).address(), iov.getLong(24));
            }
            long n = NATIVE.writev(fd, iov, (int) count);
            return n < 0 ? -runtime.getLastError() : 0;
        } catch (Throwable t) {
            LOG.warning("FUSE OPEN reply failed: " + t);
            return -FuseAbi.EIO;
        }
    }
}
