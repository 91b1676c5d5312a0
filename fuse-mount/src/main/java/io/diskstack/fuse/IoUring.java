package io.diskstack.fuse;

import com.kenai.jffi.MemoryIO;
import java.io.IOException;
import java.lang.invoke.VarHandle;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/**
 * One io_uring of 128-byte submission entries, made and used by one thread (the ring is that
 * thread's alone: {@code IORING_SETUP_SINGLE_ISSUER}), which submits one command at a time and
 * waits for its completion: what a FUSE ring entry needs ({@code IORING_OP_URING_CMD} on
 * {@code /dev/fuse}). Raw system calls through jnr-ffi, so nothing native has to be built; the
 * rings are shared memory with the kernel, read and written with the ordering the io_uring ABI
 * asks for (acquire on the kernel's tails, release on ours).
 */
final class IoUring implements AutoCloseable {
    /** mmap and munmap differ between architectures (libc's mmap through jnr-ffi answers EINVAL here). */
    private static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    private static final int SYS_MMAP = AARCH64 ? 222 : 9;
    private static final int SYS_MUNMAP = AARCH64 ? 215 : 11;
    private static final int SYS_IO_URING_SETUP = 425;
    private static final int SYS_IO_URING_ENTER = 426;
    private static final int IORING_SETUP_SQE128 = 1 << 10;
    private static final int IORING_SETUP_SINGLE_ISSUER = 1 << 12;
    private static final int IORING_SETUP_DEFER_TASKRUN = 1 << 13;
    private static final int IORING_FEAT_SINGLE_MMAP = 1;
    private static final int IORING_ENTER_GETEVENTS = 1;
    private static final long IORING_OFF_SQ_RING = 0;
    private static final long IORING_OFF_CQ_RING = 0x8000000L;
    private static final long IORING_OFF_SQES = 0x10000000L;
    static final int SQE_SIZE = 128;
    private static final int CQE_SIZE = 16;
    private static final int PARAMS_SIZE = 120;
    private static final int PROT_READ_WRITE = 3;
    private static final int MAP_SHARED_POPULATE = 0x01 | 0x8000;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
    private static final int EPERM = 1;
    private static final int EINTR = 4;

    /** The libc calls this needs; io_uring has no libc wrapper. */
    public interface Libc {
        long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

        int close(int fd);
    }

    static final Libc LIBC = LibraryLoader.create(Libc.class).failImmediately().load("c");
    private static final MemoryIO MEMORY = MemoryIO.getInstance();

    private final Runtime runtime = Runtime.getSystemRuntime();
    private final int fd;
    private final long sqRing;
    private final long sqRingSize;
    private final long cqRing;
    private final long cqRingSize;
    private final long sqes;
    private final long sqesSize;
    private final long sqTail;
    private final int sqMask;
    private final long cqHead;
    private final long cqTail;
    private final int cqMask;
    private final long cqes;
    private int localSqTail;
    private int pending;

    /** A ring of {@code entries} submission entries of 128 bytes. */
    IoUring(int entries) throws IOException {
        long params = MEMORY.allocateMemory(PARAMS_SIZE, true);
        try {
            int fd = setup(entries, params, IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
            if (fd < 0) {
                throw new IOException("io_uring_setup: errno " + -fd + (-fd == EPERM
                        ? " (io_uring is turned off: the sysctl kernel.io_uring_disabled, or a seccomp filter)" : ""));
            }
            this.fd = fd;
            int sqEntries = MEMORY.getInt(params);
            int cqEntries = MEMORY.getInt(params + 4);
            int features = MEMORY.getInt(params + 20);
            long sqOff = params + 40;
            long cqOff = params + 80;
            long sqSize = MEMORY.getInt(sqOff + 24) + 4L * sqEntries;
            long cqSize = MEMORY.getInt(cqOff + 20) + (long) CQE_SIZE * cqEntries;
            boolean single = (features & IORING_FEAT_SINGLE_MMAP) != 0;
            if (single) {
                sqSize = cqSize = Math.max(sqSize, cqSize);
            }
            long sqesLength = (long) SQE_SIZE * sqEntries;
            long sq = 0;
            long cq = 0;
            long sqesAddress = 0;
            try {
                sq = map(fd, sqSize, IORING_OFF_SQ_RING);
                cq = single ? sq : map(fd, cqSize, IORING_OFF_CQ_RING);
                sqesAddress = map(fd, sqesLength, IORING_OFF_SQES);
            } catch (IOException e) {
                if (sq != 0) {
                    unmap(sq, sqSize);
                }
                if (cq != 0 && !single) {
                    unmap(cq, cqSize);
                }
                LIBC.close(fd);
                throw e;
            }
            this.sqRing = sq;
            this.sqRingSize = sqSize;
            this.cqRing = cq;
            this.cqRingSize = single ? 0 : cqSize;
            this.sqesSize = sqesLength;
            this.sqes = sqesAddress;
            this.sqTail = sq + MEMORY.getInt(sqOff + 4);
            this.sqMask = MEMORY.getInt(sq + MEMORY.getInt(sqOff + 8));
            long array = sq + MEMORY.getInt(sqOff + 24);
            for (int i = 0; i < sqEntries; i++) {
                MEMORY.putInt(array + 4L * i, i);
            }
            this.cqHead = cq + MEMORY.getInt(cqOff);
            this.cqTail = cq + MEMORY.getInt(cqOff + 4);
            this.cqMask = MEMORY.getInt(cq + MEMORY.getInt(cqOff + 8));
            this.cqes = cq + MEMORY.getInt(cqOff + 20);
            this.localSqTail = MEMORY.getInt(sqTail);
        } finally {
            MEMORY.freeMemory(params);
        }
    }

    private static int setup(int entries, long params, int flags) {
        MEMORY.putInt(params + 8, flags);
        long r = LIBC.syscall(SYS_IO_URING_SETUP, entries, params, 0, 0, 0, 0);
        return r < 0 ? -Runtime.getSystemRuntime().getLastError() : (int) r;
    }

    private static long map(int fd, long size, long offset) throws IOException {
        long address = LIBC.syscall(SYS_MMAP, 0, size, PROT_READ_WRITE, MAP_SHARED_POPULATE, fd, offset);
        if (address == -1) {
            throw new IOException("mmap of an io_uring: errno " + Runtime.getSystemRuntime().getLastError());
        }
        return address;
    }

    /** Page-aligned, zeroed memory that is only backed once touched, for buffers the kernel fills. */
    static long mapAnonymous(long size) throws IOException {
        long address = LIBC.syscall(SYS_MMAP, 0, size, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0);
        if (address == -1) {
            throw new IOException("mmap of " + size + " bytes: errno " + Runtime.getSystemRuntime().getLastError());
        }
        return address;
    }

    static void unmap(long address, long size) {
        LIBC.syscall(SYS_MUNMAP, address, size, 0, 0, 0, 0);
    }

    /**
     * The next submission entry, zeroed, for the caller to fill before {@link #await}; one at a
     * time: the caller waits for each command's completion before it asks for another.
     */
    long nextSqe() {
        long sqe = sqes + (long) SQE_SIZE * (localSqTail & sqMask);
        MEMORY.setMemory(sqe, SQE_SIZE, (byte) 0);
        localSqTail++;
        pending++;
        return sqe;
    }

    /**
     * Submits what {@link #nextSqe} prepared and waits for one completion; returns its result
     * ({@code res}, a negative errno on failure).
     */
    int await() throws IOException {
        VarHandle.releaseFence();
        MEMORY.putInt(sqTail, localSqTail);
        while (true) {
            int head = MEMORY.getInt(cqHead);
            int tail = MEMORY.getInt(cqTail);
            VarHandle.acquireFence();
            if (head != tail) {
                int res = MEMORY.getInt(cqes + (long) CQE_SIZE * (head & cqMask) + 8);
                VarHandle.releaseFence();
                MEMORY.putInt(cqHead, head + 1);
                return res;
            }
            long r = LIBC.syscall(SYS_IO_URING_ENTER, fd, pending, 1, IORING_ENTER_GETEVENTS, 0, 0);
            if (r < 0) {
                int errno = runtime.getLastError();
                if (errno != EINTR) {
                    throw new IOException("io_uring_enter: errno " + errno);
                }
            } else {
                pending -= (int) r;
            }
        }
    }

    @Override
    public void close() {
        unmap(sqes, sqesSize);
        unmap(sqRing, sqRingSize);
        if (cqRingSize != 0) {
            unmap(cqRing, cqRingSize);
        }
        LIBC.close(fd);
    }
}
