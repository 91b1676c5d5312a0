package io.diskstack.formats.file;

import java.io.IOException;
import java.nio.file.Path;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * The system calls {@link java.nio.channels.FileChannel} lacks: fallocate (punch holes, zero
 * ranges), lseek SEEK_DATA/SEEK_HOLE and ftruncate to grow sparsely. It holds its own file
 * descriptor on the same file; all of these act on the inode, so any descriptor will do.
 */
final class NativeFile implements AutoCloseable {
    static final int FALLOC_FL_KEEP_SIZE = 0x01;
    static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    static final int FALLOC_FL_ZERO_RANGE = 0x10;
    private static final int O_RDONLY = 0;
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 0x80000;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    static final int EOPNOTSUPP = 95;
    static final int ENXIO = 6;

    /** The C library calls, bound once. */
    public interface LibC {
        int open(String path, int flags);

        int close(int fd);

        int fallocate(int fd, int mode, long offset, long length);

        long lseek(int fd, long offset, int whence);

        int ftruncate(int fd, long length);

        /** fcntl with a {@code struct flock *} argument. */
        int fcntl(int fd, int cmd, Pointer flock);

        int fstat(int fd, Pointer stat);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

    private final int fd;
    private final Path path;

    private NativeFile(int fd, Path path) {
        this.fd = fd;
        this.path = path;
    }

    static NativeFile open(Path path, boolean writable) throws IOException {
        int fd = LIBC.open(path.toString(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd < 0) {
            throw new IOException(path + ": open: " + describe(RUNTIME.getLastError()));
        }
        return new NativeFile(fd, path);
    }

    /** fallocate(2); returns 0 or the errno. */
    int fallocate(int mode, long offset, long length) {
        return LIBC.fallocate(fd, mode, offset, length) == 0 ? 0 : RUNTIME.getLastError();
    }

    /** lseek SEEK_DATA: the next data offset at or after {@code offset}, or -errno. */
    long seekData(long offset) {
        long r = LIBC.lseek(fd, offset, SEEK_DATA);
        return r >= 0 ? r : -RUNTIME.getLastError();
    }

    /** lseek SEEK_HOLE: the next hole at or after {@code offset}, or -errno. */
    long seekHole(long offset) {
        long r = LIBC.lseek(fd, offset, SEEK_HOLE);
        return r >= 0 ? r : -RUNTIME.getLastError();
    }

    void ftruncate(long length) throws IOException {
        if (LIBC.ftruncate(fd, length) != 0) {
            throw new IOException(path + ": ftruncate: " + describe(RUNTIME.getLastError()));
        }
    }

    /** struct stat is 144 bytes on x86-64 and 128 on aarch64; st_blocks is at byte 64 on both. */
    private static final int STAT_SIZE = 256;
    private static final int ST_BLOCKS_OFFSET = 64;

    /**
     * Bytes the file takes on disk (st_blocks × 512, what {@code du} and qemu-img's disk size
     * count), or -1 where the stat layout is not known.
     */
    long allocatedBytes() throws IOException {
        String arch = System.getProperty("os.arch");
        if (!arch.equals("amd64") && !arch.equals("x86_64") && !arch.equals("aarch64")) {
            return -1;
        }
        Pointer st = Memory.allocateDirect(RUNTIME, STAT_SIZE, true);
        if (LIBC.fstat(fd, st) != 0) {
            throw new IOException(path + ": fstat: " + describe(RUNTIME.getLastError()));
        }
        return st.getLong(ST_BLOCKS_OFFSET) * 512;
    }

    private static final int F_OFD_GETLK = 36;
    private static final int F_OFD_SETLK = 37;
    static final short F_RDLCK = 0;
    static final short F_WRLCK = 1;
    static final short F_UNLCK = 2;

    /**
     * An open-file-description lock on one byte (F_OFD_SETLK): {@link #F_RDLCK} or
     * {@link #F_UNLCK}. Returns 0 or the errno.
     */
    int lockByte(short type, long offset) {
        Pointer flock = flock(type, offset);
        return LIBC.fcntl(fd, F_OFD_SETLK, flock) == 0 ? 0 : RUNTIME.getLastError();
    }

    /**
     * Whether another open file description holds a lock on the byte that would conflict with
     * an exclusive lock (F_OFD_GETLK): true if one does. Throws with the errno if the test fails.
     */
    boolean byteLockedByOthers(long offset) throws IOException {
        Pointer flock = flock(F_WRLCK, offset);
        if (LIBC.fcntl(fd, F_OFD_GETLK, flock) != 0) {
            throw new IOException(path + ": F_OFD_GETLK: " + describe(RUNTIME.getLastError()));
        }
        return flock.getShort(0) != F_UNLCK;
    }

    /** struct flock (LP64): short l_type, l_whence; off_t l_start, l_len; pid_t l_pid. */
    private static Pointer flock(short type, long offset) {
        Pointer p = Memory.allocateDirect(RUNTIME, 32, true);
        p.putShort(0, type);
        p.putShort(2, (short) 0);
        p.putLong(8, offset);
        p.putLong(16, 1);
        p.putInt(24, 0);
        return p;
    }

    static String describe(int errno) {
        jnr.constants.platform.Errno e = jnr.constants.platform.Errno.valueOf(errno);
        return e == null || e.description() == null ? "errno " + errno : e.description();
    }

    @Override
    public void close() {
        LIBC.close(fd);
    }
}
