package io.diskstack.formats.file;

import io.diskstack.core.BackingImage;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.buffer.BufferPool;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/** A host file, read and written with positional I/O; the bottom of every graph. */
final class FileNode extends BlockNode {
    private final Path path;
    private final FileChannel channel;
    private final NativeFile nativeFile;
    private final boolean direct;
    private final int alignment;
    private final AtomicLong size;
    private volatile boolean punchHoleWorks = true;
    private volatile boolean zeroRangeWorks = true;
    private volatile boolean seekDataWorks = true;
    /**
     * Files whose sync failed, by file key (device and inode), and why: every later flush of them
     * fails, also through a node that reopened the file. After a failed fsync the kernel may have dropped the
     * dirty pages it could not write (marking them clean) and reports the error once per open
     * file, so a later fsync would succeed and acknowledge data that is gone (PostgreSQL's
     * "fsyncgate"; QEMU's file-posix does the same since 4.0, except with O_DIRECT, where no page
     * cache holds the data). A new mount starts afresh.
     */
    private static final Map<Object, String> FAILED_SYNCS = new ConcurrentHashMap<>();
    /** One sync at a time: of two at once, only one would hear of a writeback error. */
    private final ReentrantLock syncLock = new ReentrantLock();
    /** This file in {@link #FAILED_SYNCS}: its device and inode, or its real path where those are unknown. */
    private final Object fileKey;

    FileNode(NodeOpenContext ctx, Path path, FileChannel channel, NativeFile nativeFile, boolean direct,
             int alignment) throws IOException {
        super(ctx);
        this.path = path;
        this.channel = channel;
        this.nativeFile = nativeFile;
        this.direct = direct;
        this.alignment = alignment;
        this.size = new AtomicLong(channel.size());
        Object key = null;
        try {
            key = Files.readAttributes(path, BasicFileAttributes.class).fileKey();
        } catch (IOException e) {
            // the path then
        }
        this.fileKey = key != null ? key : path.toAbsolutePath().normalize();
    }

    @Override
    public long size() {
        return size.get();
    }

    @Override
    public boolean isGrowable() {
        return true;
    }

    @Override
    public int requestAlignment() {
        return alignment;
    }

    @Override
    public int memoryAlignment() {
        return alignment;
    }

    @Override
    public boolean supportsFua() {
        return true;
    }

    @Override
    public long allocatedSize() throws IOException {
        return nativeFile.allocatedBytes();
    }

    @Override
    public String filename() {
        return path.toString();
    }

    /** A host file is a raw image to an overlay. */
    @Override
    public BackingImage backingImage() {
        Path p = path.toAbsolutePath().normalize();
        return new BackingImage(p.toString(), "raw", p.getParent());
    }

    @Override
    public String details() {
        return direct ? "cache.direct" : "";
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        boolean interrupted = Thread.interrupted();
        try {
            long pos = offset;
            while (dst.hasRemaining()) {
                int wanted = dst.remaining();
                int n = channel.read(dst, pos);
                if (n < 0 || (direct && n < wanted)) {
                    // Past the end of the file reads as zeroes, as it does for a sparse file's holes.
                    // A short O_DIRECT read means the end too (and a next read would be unaligned).
                    fillZeroes(dst);
                    return;
                }
                pos += n;
            }
        } finally {
            keepInterrupt(interrupted);
        }
    }

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        boolean interrupted = Thread.interrupted();
        try {
            long pos = offset;
            try {
                while (src.hasRemaining()) {
                    pos += channel.write(src, pos);
                }
            } catch (IOException e) {
                throw hostError("write", e);
            }
            if (pos > size.get()) {
                size.accumulateAndGet(pos, Math::max);
            }
            if (RequestFlags.has(flags, RequestFlags.FUA) && !skipsDiskSync()) {
                sync();
            }
        } finally {
            keepInterrupt(interrupted);
        }
    }

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        zeroOut(offset, length, flags);
        if (RequestFlags.has(flags, RequestFlags.FUA)) {
            flush();
        }
    }

    private void zeroOut(long offset, long length, int flags) throws IOException {
        long end = offset + length;
        long fileSize = size.get();
        if (RequestFlags.has(flags, RequestFlags.MAY_UNMAP) && punchHoleWorks) {
            long insideEnd = Math.min(end, fileSize);
            if (offset >= insideEnd || punchHole(offset, insideEnd - offset)) {
                if (end > fileSize) {
                    growTo(end);
                }
                return;
            }
        }
        if (zeroRangeWorks) {
            int err = nativeFile.fallocate(NativeFile.FALLOC_FL_ZERO_RANGE, offset, length);
            if (err == 0) {
                size.accumulateAndGet(end, Math::max);
                return;
            }
            if (err != NativeFile.EOPNOTSUPP) {
                throw new BlockIOException(errnoOfHost(err), path + ": fallocate(ZERO_RANGE): " + NativeFile.describe(err));
            }
            zeroRangeWorks = false;
        }
        if (RequestFlags.has(flags, RequestFlags.NO_FALLBACK)) {
            throw new BlockIOException(Errno.ENOTSUP, path + ": no efficient write-zeroes here");
        }
        super.writeZeroes(offset, length, flags & ~RequestFlags.FUA); // one sync, after
    }

    @Override
    protected void discard(long offset, long length) throws IOException {
        long insideEnd = Math.min(offset + length, size.get());
        if (punchHoleWorks && offset < insideEnd) {
            punchHole(offset, insideEnd - offset);
        }
    }

    /** Punches a hole; false if the file system cannot. */
    private boolean punchHole(long offset, long length) throws IOException {
        int err = nativeFile.fallocate(NativeFile.FALLOC_FL_PUNCH_HOLE | NativeFile.FALLOC_FL_KEEP_SIZE, offset, length);
        if (err == 0) {
            return true;
        }
        if (err == NativeFile.EOPNOTSUPP) {
            punchHoleWorks = false;
            return false;
        }
        throw new BlockIOException(errnoOfHost(err), path + ": fallocate(PUNCH_HOLE): " + NativeFile.describe(err));
    }

    @Override
    protected void truncate(long newSize) throws IOException {
        nativeFile.ftruncate(newSize);
        size.set(newSize);
    }

    /**
     * Extends the file to at least {@code newSize} by allocating its last byte: unlike ftruncate,
     * this can never shrink the file under a concurrent write further out.
     */
    private void growTo(long newSize) throws IOException {
        if (size.get() >= newSize) {
            return;
        }
        int err = nativeFile.fallocate(0, newSize - 1, 1);
        if (err == NativeFile.EOPNOTSUPP) {
            synchronized (size) {
                long now = Math.max(size.get(), channel.size());
                if (now < newSize) {
                    nativeFile.ftruncate(newSize);
                }
            }
        } else if (err != 0) {
            throw new BlockIOException(errnoOfHost(err), path + ": fallocate: " + NativeFile.describe(err));
        }
        size.accumulateAndGet(newSize, Math::max);
    }

    /** A host failure as the errno a guest should see: a full host disk is ENOSPC, not EIO. */
    private BlockIOException hostError(String what, IOException e) {
        String m = String.valueOf(e.getMessage());
        Errno errno = m.contains("No space left") || m.contains("quota") ? Errno.ENOSPC : BlockIOException.errnoOf(e);
        return new BlockIOException(errno, path + ": " + what + ": " + m, e);
    }

    @Override
    protected void flush() throws IOException {
        if (!skipsDiskSync()) {
            boolean interrupted = Thread.interrupted();
            try {
                sync();
            } finally {
                keepInterrupt(interrupted);
            }
        }
    }

    /** fdatasync, refused for good once one of the file has failed (see {@link #FAILED_SYNCS}). */
    private void sync() throws IOException {
        syncLock.lock();
        try {
            String failed = FAILED_SYNCS.get(fileKey);
            if (failed != null) {
                throw new BlockIOException(Errno.EIO, path + ": an earlier sync failed (" + failed
                        + "); what was written since the sync before it may be lost, so no flush succeeds until the disk is mounted again");
            }
            try {
                channel.force(false);
            } catch (java.nio.channels.ClosedChannelException e) {
                throw e;
            } catch (IOException e) {
                if (!direct) {
                    FAILED_SYNCS.put(fileKey, String.valueOf(e.getMessage()));
                }
                throw hostError("sync", e);
            }
        } finally {
            syncLock.unlock();
        }
    }

    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        int allocated = BlockStatus.ALLOCATED | BlockStatus.OFFSET_VALID;
        long fileSize = size.get();
        if (offset >= fileSize) {
            return new BlockStatus(length, allocated | BlockStatus.ZERO, null, offset);
        }
        if (seekDataWorks) {
            long data = nativeFile.seekData(offset);
            if (data == -NativeFile.ENXIO) {
                return new BlockStatus(length, allocated | BlockStatus.ZERO, null, offset);
            }
            if (data >= 0) {
                if (data > offset) {
                    return new BlockStatus(Math.min(length, data - offset), allocated | BlockStatus.ZERO, null, offset);
                }
                long hole = nativeFile.seekHole(offset);
                if (hole > offset) {
                    return new BlockStatus(Math.min(length, hole - offset), allocated | BlockStatus.DATA, null, offset);
                }
            } else {
                seekDataWorks = false;
            }
        }
        return new BlockStatus(length, allocated | BlockStatus.DATA, null, offset);
    }

    @Override
    protected void releaseWritePermission() {
        ImageLock.releaseWrite(nativeFile);
    }

    @Override
    protected void close() throws IOException {
        try {
            channel.close();
        } finally {
            nativeFile.close();
        }
    }

    /**
     * A FileChannel closes itself for every user when I/O starts on an interrupted thread, so the
     * I/O methods clear a pending interrupt first and set it again afterwards for the caller.
     */
    private static void keepInterrupt(boolean interrupted) {
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private static Errno errnoOfHost(int err) {
        return err == 28 || err == 122 ? Errno.ENOSPC : Errno.EIO; // ENOSPC, EDQUOT
    }

    private static void fillZeroes(ByteBuffer dst) {
        while (dst.hasRemaining()) {
            dst.put(BufferPool.zeroes(Math.min(dst.remaining(), 1 << 20)));
        }
    }
}
