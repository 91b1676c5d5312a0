package io.diskstack.fuse;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/** The parts of the FUSE kernel protocol and of libfuse2's structures that the request loops read. */
final class FuseAbi {
    /** struct fuse_in_header; READ, WRITE, FSYNC and FALLOCATE requests start with the file handle after it. */
    static final int IN_HEADER = 40;
    /** struct fuse_out_header: len, error, unique. */
    static final int OUT_HEADER = 16;
    static final int FUSE_OPEN = 14;
    static final int FUSE_READ = 15;
    static final int FUSE_WRITE = 16;
    static final int FUSE_FSYNC = 20;
    static final int FUSE_INIT = 26;
    static final int FUSE_FALLOCATE = 43;
    static final int EIO = 5;
    /** struct fuse_buf (LP64): size_t size; enum flags; void *mem; int fd; off_t pos. */
    private static final int FUSE_BUF_SIZE = 40;

    private FuseAbi() {
    }

    /** A zeroed struct fuse_buf. */
    static Pointer newFuseBuf() {
        return Memory.allocateDirect(Runtime.getSystemRuntime(), FUSE_BUF_SIZE, true);
    }

    /** Points {@code fuseBuf} at {@code size} bytes of memory at {@code address}. */
    static void setMemory(Pointer fuseBuf, long address, long size) {
        fuseBuf.putLong(0, size);
        fuseBuf.putInt(8, 0);
        fuseBuf.putAddress(16, address);
    }
}
