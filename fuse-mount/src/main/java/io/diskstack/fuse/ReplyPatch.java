package io.diskstack.fuse;

import java.util.logging.Logger;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.Struct;
import jnr.ffi.annotations.Delegate;
import jnr.ffi.types.size_t;

/**
 * Gives libfuse2 what libfuse3 negotiates. libfuse2 speaks FUSE protocol 7.12, which caps reads
 * and writes at 128 KiB, so a 1 MiB direct write costs eight round trips (7.28 added
 * {@code max_pages}); and it cannot ask for asynchronous direct I/O (7.22), without which the
 * kernel serves each libaio direct read inside {@code io_submit}, so queue depth 16 acts as 1. The INIT request is handed to libfuse with a channel of ours
 * whose send function rewrites libfuse's reply to say 7.28 and 256 pages. Every request libfuse2
 * parses keeps its 7.12 layout in 7.28 (later versions only appended fields or added opcodes,
 * which libfuse2 answers with ENOSYS), so nothing else changes. The patch applies only if the
 * kernel offers max_pages; otherwise libfuse's reply goes out untouched.
 */
final class InitReplyPatch {
    private static final Logger LOG = Logger.getLogger(InitReplyPatch.class.getName());
    static final int FUSE_INIT = 26;
    private static final int IN_HEADER = 40;
    private static final int OUT_HEADER = 16;
    private static final int INIT_OUT_SIZE = 64;
    private static final int FUSE_ASYNC_DIO = 1 << 15;
    private static final int FUSE_MAX_PAGES = 1 << 22;
    private static final int PATCHED_MINOR = 28;
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
    private volatile int kernelMinor;
    private volatile boolean applies;
    private volatile int asyncDio;
    private volatile boolean applied;

    InitReplyPatch(Pointer realChannel) {
        this.fd = NATIVE.fuse_chan_fd(realChannel);
        this.ops = new ChannelOps(runtime);
        ops.send.set(send);
        this.channel = NATIVE.fuse_chan_new(ops, fd, MAX_REQUEST + 4096, null);
    }

    /**
     * Looks at an INIT request and returns the channel to process it with: ours, whose send
     * rewrites the reply.
     */
    Pointer channelFor(Pointer request) {
        kernelMinor = request.getInt(IN_HEADER + 4);
        int kernelFlags = request.getInt(IN_HEADER + 12);
        applies = kernelMinor >= PATCHED_MINOR && (kernelFlags & FUSE_MAX_PAGES) != 0;
        asyncDio = kernelFlags & FUSE_ASYNC_DIO;
        return channel;
    }

    boolean applied() {
        return applied;
    }

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
            return -5;
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
        out.putInt(OUT_HEADER + 4, PATCHED_MINOR);
        out.putInt(OUT_HEADER + 12, out.getInt(OUT_HEADER + 12) | FUSE_MAX_PAGES | asyncDio);
        out.putInt(OUT_HEADER + 20, MAX_REQUEST);
        out.putInt(OUT_HEADER + 24, 1);
        out.putShort(OUT_HEADER + 28, (short) MAX_PAGES);
        long n = NATIVE.write(fd, out, OUT_HEADER + INIT_OUT_SIZE);
        if (n < 0) {
            return -runtime.getLastError();
        }
        applied = true;
        return 0;
    }
}
