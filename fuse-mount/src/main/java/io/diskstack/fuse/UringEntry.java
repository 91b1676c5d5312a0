package io.diskstack.fuse;

import com.kenai.jffi.MemoryIO;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.logging.Logger;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * One FUSE ring entry and the thread that serves it: its own io_uring, a header buffer and a
 * payload buffer as large as the largest request. It registers the entry, then loops: a request
 * arrives in the buffers, libfuse2 processes it, and the reply is committed with the same command
 * that fetches the next request.
 *
 * <p>libfuse2 parses requests as {@code /dev/fuse} gives them, so the request is put back
 * together in the page in front of the payload (in header, then the operation's header; the
 * payload, such as a write's data, stays where the kernel put it), and libfuse's reply comes back
 * through a channel of ours whose send function copies it into the entry.
 */
final class UringEntry implements Runnable {
    private static final Logger LOG = Logger.getLogger(UringEntry.class.getName());
    private static final int IORING_OP_URING_CMD = 46;
    private static final int CMD_REGISTER = 1;
    private static final int CMD_COMMIT_AND_FETCH = 2;
    /** struct fuse_uring_req_header: in/out header (128), operation header (128), entry in/out (32). */
    private static final int OP_IN = 128;
    private static final int ENT_IN_OUT = 256;
    private static final int COMMIT_ID = ENT_IN_OUT + 8;
    private static final int PAYLOAD_SIZE = ENT_IN_OUT + 16;
    private static final int HEADER_SIZE = 288;
    /** The header, the iovecs and the rebuilt request live in the page before the payload. */
    private static final int PREFIX = 4096;
    private static final int IOVECS = 512;
    private static final int ENODEV = 19;
    private static final int ENOTCONN = 107;
    private static final int ECANCELED = 125;
    /** Entries registered anew, in a row, after failed commits before the entry gives up. */
    private static final int MAX_REREGISTER = 3;
    private static final MemoryIO MEMORY = MemoryIO.getInstance();

    /** The thread of an entry, so that a read on it can find the entry's buffer. */
    static final class EntryThread extends Thread {
        final UringEntry entry;

        EntryThread(UringEntry entry, String name) {
            super(entry, name);
            this.entry = entry;
            setDaemon(true);
        }
    }

    private final FuseUring uring;
    private final int fuseFd;
    private final int qid;
    private final CountDownLatch made;
    private final long payloadSize;
    private final ReplyPatch.Send send = this::send;
    private volatile String failure;
    private IoUring ring;
    private long area;
    private long header;
    private long payload;
    private Pointer fuseBuf;
    private ReplyPatch.ChannelOps ops;
    private Pointer channel;
    private int opcode;
    private boolean replied;
    /** Bytes a READ put straight into the payload ({@link FuseUring#readBuffer}), or 0. */
    private long readInPlace;

    UringEntry(FuseUring uring, int fuseFd, int qid, CountDownLatch made) {
        this.uring = uring;
        this.fuseFd = fuseFd;
        this.qid = qid;
        this.made = made;
        this.payloadSize = uring.payloadSize();
    }

    /** Why this entry could not be made, or null. */
    String failure() {
        return failure;
    }

    @Override
    public void run() {
        try {
            try {
                make();
            } catch (IOException | RuntimeException | OutOfMemoryError e) {
                failure = e.getMessage() != null ? e.getMessage() : e.toString();
                return;
            } finally {
                made.countDown();
            }
            if (uring.awaitGo()) {
                serveUntilClosed();
            }
        } catch (Throwable t) {
            LOG.severe("FUSE over io_uring: an entry of queue " + qid + " failed: " + t);
        } finally {
            free();
        }
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
        fuseBuf = FuseAbi.newFuseBuf();
        ops = new ReplyPatch.ChannelOps(Runtime.getSystemRuntime());
        ops.send.set(send);
        channel = ReplyPatch.newChannel(ops, fuseFd, PREFIX + payloadSize);
    }

    /**
     * Registers and serves until the connection ends. A refused registration ends the entry (the
     * kernel then turns io_uring off, or goes on with the other entries); a refused commit (its
     * request was aborted meanwhile, say) costs the kernel's entry, so a new one is registered.
     */
    private void serveUntilClosed() throws IOException {
        submit(CMD_REGISTER, 0);
        boolean registered = false;
        int reregistered = 0;
        while (true) {
            int res = ring.await();
            if (res == -ENOTCONN || res == -ECANCELED || res == -ENODEV) {
                return;
            }
            if (res < 0 && !registered) {
                uring.refused(qid, -res);
                return;
            }
            if (res < 0) {
                if (++reregistered > MAX_REREGISTER) {
                    LOG.severe("FUSE over io_uring: queue " + qid + " lost an entry (errno " + -res + ")");
                    return;
                }
                LOG.warning("FUSE over io_uring: the kernel refused a reply on queue " + qid + " (errno " + -res
                        + "); registering the entry again");
                registered = false;
                submit(CMD_REGISTER, 0);
                continue;
            }
            registered = true;
            reregistered = 0;
            long commitId = MEMORY.getLong(header + COMMIT_ID);
            long unique = MEMORY.getLong(header + 8);
            try {
                serve(unique);
            } catch (RuntimeException | Error e) {
                // the entry must go on (an unanswered request would hang its caller)
                LOG.severe("FUSE over io_uring: request " + unique + " failed: " + e);
                replyError(unique);
            }
            uring.served();
            submit(CMD_COMMIT_AND_FETCH, commitId);
        }
    }

    private void submit(int command, long commitId) {
        long sqe = ring.nextSqe();
        MEMORY.putByte(sqe, (byte) IORING_OP_URING_CMD);
        MEMORY.putInt(sqe + 4, fuseFd);
        MEMORY.putInt(sqe + 8, command);
        MEMORY.putLong(sqe + 16, area + IOVECS);
        MEMORY.putInt(sqe + 24, 2);
        // struct fuse_uring_cmd_req in the entry's command area (offset 48): flags, commit_id, qid
        MEMORY.putLong(sqe + 56, commitId);
        MEMORY.putShort(sqe + 64, (short) qid);
    }

    /** Rebuilds the request as /dev/fuse gives it, in front of the payload, and has libfuse serve it. */
    private void serve(long unique) {
        int length = MEMORY.getInt(header);
        opcode = MEMORY.getInt(header + 4);
        int payloadLength = MEMORY.getInt(header + PAYLOAD_SIZE);
        int opLength = length - FuseAbi.IN_HEADER - payloadLength;
        if (opLength < 0 || opLength > ENT_IN_OUT - OP_IN || payloadLength > payloadSize) {
            LOG.warning("FUSE over io_uring: request " + unique + " (opcode " + opcode + ") has length "
                    + length + " with " + payloadLength + " bytes of payload; answered EIO");
            replyError(unique);
            return;
        }
        long start = payload - FuseAbi.IN_HEADER - opLength;
        MEMORY.copyMemory(header, start, FuseAbi.IN_HEADER);
        MEMORY.copyMemory(header + OP_IN, start + FuseAbi.IN_HEADER, opLength);
        FuseAbi.setMemory(fuseBuf, start, length);
        replied = false;
        readInPlace = 0;
        uring.lib().fuse_session_process_buf(uring.session(), fuseBuf, channel);
        if (!replied) {
            replyError(unique);
        }
    }

    private void replyError(long unique) {
        MEMORY.putInt(header, FuseAbi.OUT_HEADER);
        MEMORY.putInt(header + 4, -FuseAbi.EIO);
        MEMORY.putLong(header + 8, unique);
        MEMORY.putInt(header + PAYLOAD_SIZE, 0);
    }

    /** libfuse's reply: the out header goes to the entry's header, the arguments to its payload. */
    private int send(Pointer ch, Pointer iov, long count) {
        try {
            MEMORY.copyMemory(iov.getLong(0), header, FuseAbi.OUT_HEADER);
            if (readInPlace > 0 && count > 1) {
                // the data is in the payload already (readBuffer); libfuse's buffer holds none of it
                if (count != 2 || iov.getLong(24) != readInPlace) {
                    return -FuseAbi.EIO;
                }
                MEMORY.putInt(header + PAYLOAD_SIZE, (int) readInPlace);
                replied = true;
                return 0;
            }
            long total = 0;
            for (int i = 1; i < count; i++) {
                long base = iov.getLong(16L * i);
                long len = iov.getLong(16L * i + 8);
                if (total + len > payloadSize) {
                    return -FuseAbi.EIO;
                }
                MEMORY.copyMemory(base, payload + total, len);
                total += len;
            }
            if (opcode == FuseAbi.FUSE_OPEN && MEMORY.getInt(header + 4) == 0) {
                uring.replyPatch().allowParallelDirectWrites(payload, total);
            }
            MEMORY.putInt(header + PAYLOAD_SIZE, (int) total);
            replied = true;
            return 0;
        } catch (Throwable t) {
            LOG.warning("FUSE over io_uring: a reply failed: " + t);
            return -FuseAbi.EIO;
        }
    }

    /** The payload buffer for a READ's data ({@link FuseUring#readBuffer}), or 0. */
    long claimPayload(long length) {
        if (opcode != FuseAbi.FUSE_READ || length > payloadSize) {
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
