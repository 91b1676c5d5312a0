package io.diskstack.fuse;

import com.kenai.jffi.MemoryIO;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.snapshot.ViewCache;
import io.diskstack.fuse.MountTree.Control;
import io.diskstack.fuse.MountTree.Disk;
import io.diskstack.fuse.MountTree.Entry;
import io.diskstack.fuse.MountTree.Folder;
import io.diskstack.fuse.MountTree.SnapshotFile;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;
import jnr.ffi.Pointer;
import jnr.ffi.Struct;
import jnr.ffi.types.mode_t;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;
import ru.serce.jnrfuse.ErrorCodes;
import ru.serce.jnrfuse.FuseFillDir;
import ru.serce.jnrfuse.FuseStubFS;
import ru.serce.jnrfuse.struct.FileStat;
import ru.serce.jnrfuse.struct.FuseFileInfo;
import ru.serce.jnrfuse.struct.Statvfs;

/**
 * The FUSE file system: resolves the path, delegates to the disk's backend or the control file,
 * and turns every failure into a negative errno in one place ({@link #fail}). No exception ever
 * escapes a native callback.
 *
 * <p>Disk reads and writes go straight between the FUSE buffer and the block layer through a
 * direct ByteBuffer view of it: the view is valid only during the callback, and the block layer
 * finishes with a buffer before the call returns (its contract), so nothing keeps it.
 */
final class DiskstackFs extends FuseStubFS {
    private static final Logger LOG = Logger.getLogger(DiskstackFs.class.getName());
    private static final int O_ACCMODE = 3;
    private static final int O_RDONLY = 0;
    private static final int FALLOC_FL_KEEP_SIZE = 0x01;
    private static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    private static final int FALLOC_FL_ZERO_RANGE = 0x10;
    /** struct fuse_file_info (libfuse 2.9, LP64): the direct_io bit field word and fh. */
    private static final int FI_BITS_OFFSET = 20;
    private static final int FI_FH_OFFSET = 24;
    /** struct fuse_conn_info: capable and want; FUSE_CAP_ATOMIC_O_TRUNC. */
    private static final int CONN_CAPABLE_OFFSET = 20;
    private static final int CONN_WANT_OFFSET = 24;
    private static final int FUSE_CAP_ATOMIC_O_TRUNC = 1 << 3;
    /** struct fuse_conn_info: max_background and congestion_threshold. */
    private static final int CONN_MAX_BACKGROUND_OFFSET = 28;
    private static final int CONN_CONGESTION_THRESHOLD_OFFSET = 32;
    /** The kernel's default of 12 background requests would cap asynchronous direct I/O at queue depth 12. */
    private static final int MAX_BACKGROUND = 64;

    private final MountTree tree;
    private final boolean directIo;
    private final long uid;
    private final long gid;
    private final long mountTime = System.currentTimeMillis() / 1000;
    private final AtomicLong nextHandle = new AtomicLong(1);
    private final Map<Long, byte[]> controlSnapshots = new ConcurrentHashMap<>();
    private final Map<Long, ViewCache.Lease> openSnapshots = new ConcurrentHashMap<>();
    private final Map<String, Long> laneHandles = new ConcurrentHashMap<>();
    private final ErrorLog errorLog = new ErrorLog();
    private volatile boolean fhOffsetChecked;
    private volatile boolean canSetFileInfoBits;

    DiskstackFs(MountTree tree, boolean directIo, long uid, long gid) {
        this.tree = tree;
        this.directIo = directIo;
        this.uid = uid;
        this.gid = gid;
    }

    /** The callbacks jnr-fuse wired up, for {@link FuseSession}. */
    ru.serce.jnrfuse.struct.FuseOperations operations() {
        return fuseOperations;
    }

    @Override
    public Pointer init(Pointer conn) {
        try {
            int capable = conn.getInt(CONN_CAPABLE_OFFSET);
            if ((capable & FUSE_CAP_ATOMIC_O_TRUNC) != 0) {
                // O_TRUNC then reaches open() as a flag instead of a truncate to 0, which a disk
                // ignores the way a block device does: `dd of=MNT/disk0` keeps working.
                conn.putInt(CONN_WANT_OFFSET, conn.getInt(CONN_WANT_OFFSET) | FUSE_CAP_ATOMIC_O_TRUNC);
            }
            conn.putInt(CONN_MAX_BACKGROUND_OFFSET, MAX_BACKGROUND);
            conn.putInt(CONN_CONGESTION_THRESHOLD_OFFSET, MAX_BACKGROUND * 3 / 4);
        } catch (Throwable t) {
            LOG.log(Level.FINE, "init: could not ask for atomic O_TRUNC", t);
        }
        return null;
    }

    @Override
    public int getattr(String path, FileStat stat) {
        try {
            Entry e = tree.lookup(path);
            if (e == null) {
                return -ErrorCodes.ENOENT();
            }
            stat.st_uid.set(uid);
            stat.st_gid.set(gid);
            stat.st_mtim.tv_sec.set(mountTime);
            stat.st_ctim.tv_sec.set(mountTime);
            stat.st_atim.tv_sec.set(mountTime);
            stat.st_blksize.set(4096);
            if (e instanceof Folder) {
                stat.st_mode.set(FileStat.S_IFDIR | (path.equals("/") ? 0755 : 0700));
                stat.st_nlink.set(2);
            } else if (e instanceof Disk d) {
                long size = d.backend().size();
                stat.st_uid.set(d.access().uid());
                stat.st_gid.set(d.access().gid());
                stat.st_mode.set(FileStat.S_IFREG | d.access().mode());
                stat.st_nlink.set(1);
                stat.st_size.set(size);
                stat.st_blocks.set((size + 511) / 512);
            } else if (e instanceof Control c) {
                stat.st_mode.set(FileStat.S_IFREG | (c.file().isWritable() ? 0600 : 0400));
                stat.st_nlink.set(1);
                stat.st_size.set(0);
            } else if (e instanceof SnapshotFile f) {
                stat.st_mode.set(FileStat.S_IFREG | 0400);
                stat.st_nlink.set(1);
                stat.st_size.set(f.size());
                stat.st_blocks.set((f.size() + 511) / 512);
            }
            return 0;
        } catch (Throwable t) {
            return fail("getattr", path, t);
        }
    }

    @Override
    public int readdir(String path, Pointer buf, FuseFillDir filler, @off_t long offset, FuseFileInfo fi) {
        try {
            if (!(tree.lookup(path) instanceof Folder f)) {
                return -ErrorCodes.ENOTDIR();
            }
            filler.apply(buf, ".", null, 0);
            filler.apply(buf, "..", null, 0);
            for (String name : f.children()) {
                filler.apply(buf, name, null, 0);
            }
            return 0;
        } catch (Throwable t) {
            return fail("readdir", path, t);
        }
    }

    @Override
    public int open(String path, FuseFileInfo fi) {
        try {
            Entry e = tree.lookup(path);
            if (e == null) {
                return -ErrorCodes.ENOENT();
            }
            boolean wantsWrite = (fi.flags.get() & O_ACCMODE) != O_RDONLY;
            if (e instanceof Folder) {
                return -ErrorCodes.EISDIR();
            } else if (e instanceof Disk d) {
                if (wantsWrite && !d.backend().isWritable()) {
                    return -ErrorCodes.EROFS();
                }
                // The handle names the disk's lane: FuseSession bounds the threads one disk holds
                // (over io_uring, each CPU's entries bound them instead).
                setFileInfo(fi, directIo, laneHandles.computeIfAbsent(d.backend().name(),
                        n -> FuseSession.LANE_HANDLE | nextHandle.getAndIncrement()));
                // Counted for snapshot-revert, which refuses to change an open disk; waits while one runs.
                tree.openDisks().opened(d.backend().name());
            } else if (e instanceof Control c) {
                if (wantsWrite && !c.file().isWritable()) {
                    return -ErrorCodes.EACCES();
                }
                long handle = nextHandle.getAndIncrement();
                if (!wantsWrite) {
                    controlSnapshots.put(handle, c.file().read().getBytes(StandardCharsets.UTF_8));
                }
                setFileInfo(fi, true, handle);
            } else if (e instanceof SnapshotFile f) {
                if (wantsWrite) {
                    return -ErrorCodes.EROFS();
                }
                long handle = nextHandle.getAndIncrement();
                openSnapshots.put(handle, f.views().open(f.name()));
                // direct_io: no page cache that could outlive a deleted snapshot of the same name
                setFileInfo(fi, true, handle);
            }
            return 0;
        } catch (Throwable t) {
            return fail("open", path, t);
        }
    }

    @Override
    public int read(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        try {
            Entry e = tree.lookup(path);
            if (e instanceof Disk d) {
                long diskSize = d.backend().size();
                if (offset >= diskSize || size <= 0) {
                    return 0;
                }
                int n = (int) Math.min(size, diskSize - offset);
                long ring = FuseUring.readBuffer(n);
                d.backend().read(offset, ring != 0 ? MemoryIO.getInstance().newDirectByteBuffer(ring, n) : view(buf, n));
                return n;
            }
            if (e instanceof Control) {
                byte[] content = controlSnapshots.get(fileHandle(fi));
                if (content == null || offset >= content.length) {
                    return 0;
                }
                int n = (int) Math.min(size, content.length - offset);
                buf.put(0, content, (int) offset, n);
                return n;
            }
            if (e instanceof SnapshotFile) {
                ViewCache.Lease open = openSnapshots.get(fileHandle(fi));
                if (open == null) {
                    return -ErrorCodes.EBADF();
                }
                long snapSize = open.size();
                if (offset >= snapSize || size <= 0) {
                    return 0;
                }
                int n = (int) Math.min(size, snapSize - offset);
                open.read(offset, view(buf, n));
                return n;
            }
            return e == null ? -ErrorCodes.ENOENT() : -ErrorCodes.EISDIR();
        } catch (Throwable t) {
            return fail("read", path, t);
        }
    }

    @Override
    public int write(String path, Pointer buf, @size_t long size, @off_t long offset, FuseFileInfo fi) {
        try {
            Entry e = tree.lookup(path);
            if (e instanceof Disk d) {
                long diskSize = d.backend().size();
                if (offset >= diskSize) {
                    // A fixed-size disk, like a block device: no room past the end.
                    return -ErrorCodes.ENOSPC();
                }
                int n = (int) Math.min(size, diskSize - offset);
                d.backend().write(offset, view(buf, n), 0);
                return n;
            }
            if (e instanceof Control c) {
                byte[] bytes = new byte[(int) size];
                buf.get(0, bytes, 0, bytes.length);
                String text = new String(bytes, StandardCharsets.UTF_8);
                if (text.endsWith("\n")) {
                    text = text.substring(0, text.length() - 1);
                }
                try {
                    c.file().write(text);
                } catch (IOException | RuntimeException failure) {
                    tree.recordError(c.folder(), path.substring(path.lastIndexOf('/') + 1) + ": " + failure.getMessage());
                    throw failure;
                }
                return (int) size;
            }
            if (e instanceof SnapshotFile) {
                return -ErrorCodes.EROFS();
            }
            return e == null ? -ErrorCodes.ENOENT() : -ErrorCodes.EISDIR();
        } catch (Throwable t) {
            return fail("write", path, t);
        }
    }

    @Override
    public int fsync(String path, int isdatasync, FuseFileInfo fi) {
        try {
            Entry e = tree.lookup(path);
            if (e instanceof Disk d) {
                d.backend().flush();
            }
            return 0;
        } catch (Throwable t) {
            return fail("fsync", path, t);
        }
    }

    @Override
    public int flush(String path, FuseFileInfo fi) {
        // close(2): not a durability point for a regular file, and not for ours (fsync is).
        return 0;
    }

    @Override
    public int release(String path, FuseFileInfo fi) {
        try {
            long handle = fileHandle(fi);
            if ((handle & FuseSession.LANE_HANDLE) != 0) {
                if (tree.lookup(path) instanceof Disk d) {
                    tree.openDisks().released(d.backend().name());
                }
            } else if (handle != 0) {
                controlSnapshots.remove(handle);
                ViewCache.Lease open = openSnapshots.remove(handle);
                if (open != null) {
                    open.close();
                }
            }
            return 0;
        } catch (Throwable t) {
            return fail("release", path, t);
        }
    }

    @Override
    public int truncate(String path, @off_t long size) {
        try {
            Entry e = tree.lookup(path);
            if (e instanceof Disk d) {
                if (size == d.backend().size()) {
                    return 0;
                }
                LOG.info(() -> "export '" + d.backend().name() + "': its size is fixed at " + d.backend().size()
                        + " bytes; refusing to resize it to " + size);
                return -ErrorCodes.EINVAL();
            }
            if (e instanceof Control) {
                return 0;
            }
            if (e instanceof SnapshotFile) {
                return -ErrorCodes.EROFS();
            }
            return e == null ? -ErrorCodes.ENOENT() : -ErrorCodes.EISDIR();
        } catch (Throwable t) {
            return fail("truncate", path, t);
        }
    }

    @Override
    public int ftruncate(String path, @off_t long size, FuseFileInfo fi) {
        return truncate(path, size);
    }

    @Override
    public int fallocate(String path, int mode, @off_t long offset, @off_t long length, FuseFileInfo fi) {
        try {
            Entry e = tree.lookup(path);
            if (!(e instanceof Disk d)) {
                return e == null ? -ErrorCodes.ENOENT() : -ErrorCodes.EOPNOTSUPP();
            }
            long diskSize = d.backend().size();
            if (offset < 0 || length <= 0) {
                return -ErrorCodes.EINVAL();
            }
            long end = Math.min(offset + length, diskSize);
            if ((mode & FALLOC_FL_PUNCH_HOLE) != 0) {
                if ((mode & FALLOC_FL_KEEP_SIZE) == 0) {
                    return -ErrorCodes.EINVAL();
                }
                // A punched hole must read back as zeroes, which a discard does not promise.
                if (offset < end) {
                    d.backend().writeZeroes(offset, end - offset, RequestFlags.MAY_UNMAP);
                }
                return 0;
            }
            if ((mode & FALLOC_FL_ZERO_RANGE) != 0) {
                if (offset < end) {
                    d.backend().writeZeroes(offset, end - offset, 0);
                }
                return offset + length > diskSize && (mode & FALLOC_FL_KEEP_SIZE) == 0 ? -ErrorCodes.ENOSPC() : 0;
            }
            if ((mode & ~FALLOC_FL_KEEP_SIZE) == 0) {
                // Preallocation: the disk's size cannot grow; within it there is nothing to do.
                return offset + length > diskSize && (mode & FALLOC_FL_KEEP_SIZE) == 0 ? -ErrorCodes.ENOSPC() : 0;
            }
            return -ErrorCodes.EOPNOTSUPP();
        } catch (Throwable t) {
            return fail("fallocate", path, t);
        }
    }

    @Override
    public int statfs(String path, Statvfs stbuf) {
        try {
            long total = 0;
            for (Disk d : tree.allDisks()) {
                total += d.backend().size();
            }
            stbuf.f_bsize.set(4096);
            stbuf.f_frsize.set(4096);
            stbuf.f_blocks.set(total / 4096);
            stbuf.f_bfree.set(0);
            stbuf.f_bavail.set(0);
            stbuf.f_files.set(tree.allDisks().size());
            stbuf.f_namemax.set(255);
            return 0;
        } catch (Throwable t) {
            return fail("statfs", path, t);
        }
    }

    @Override
    public int utimens(String path, ru.serce.jnrfuse.struct.Timespec[] timespec) {
        try {
            return tree.lookup(path) == null ? -ErrorCodes.ENOENT() : 0;
        } catch (Throwable t) {
            return fail("utimens", path, t);
        }
    }

    @Override
    public int chmod(String path, @mode_t long mode) {
        return -ErrorCodes.EPERM();
    }

    /**
     * The config says who owns a disk, so a chown may only confirm it: libvirt's DAC driver
     * chowns a disk to QEMU's user before a VM starts, which succeeds when the export already
     * names that owner. Anything else is EPERM.
     */
    @Override
    public int chown(String path, @jnr.ffi.types.uid_t long newUid, @jnr.ffi.types.gid_t long newGid) {
        try {
            Entry e = tree.lookup(path);
            if (e == null) {
                return -ErrorCodes.ENOENT();
            }
            long owner = e instanceof Disk d ? d.access().uid() : uid;
            long group = e instanceof Disk d ? d.access().gid() : gid;
            boolean sameUid = newUid == owner || newUid == -1 || newUid == 0xffff_ffffL;
            boolean sameGid = newGid == group || newGid == -1 || newGid == 0xffff_ffffL;
            return sameUid && sameGid ? 0 : -ErrorCodes.EPERM();
        } catch (Throwable t) {
            return fail("chown", path, t);
        }
    }

    @Override
    public int create(String path, @mode_t long mode, FuseFileInfo fi) {
        return -ErrorCodes.EPERM();
    }

    @Override
    public int unlink(String path) {
        return -ErrorCodes.EPERM();
    }

    @Override
    public int mkdir(String path, @mode_t long mode) {
        return -ErrorCodes.EPERM();
    }

    @Override
    public int rename(String oldpath, String newpath) {
        return -ErrorCodes.EPERM();
    }

    /** The one error boundary: log (rate-limited) and return the failure's errno, negated. */
    private int fail(String op, String path, Throwable t) {
        Errno errno;
        if (t instanceof ConfigException c) {
            errno = c.errno();
        } else if (t instanceof IOException) {
            errno = BlockIOException.errnoOf(t);
        } else {
            errno = Errno.EIO;
            LOG.log(Level.SEVERE, op + " " + path + ": internal error: " + t, t);
        }
        errorLog.log(op + " " + path + ": " + t.getMessage() + " (" + errno + ")");
        return -errno.code();
    }

    private static ByteBuffer view(Pointer buf, int length) {
        return MemoryIO.getInstance().newDirectByteBuffer(buf.address(), length);
    }

    private void setFileInfo(FuseFileInfo fi, boolean direct, long handle) {
        Pointer p = Struct.getMemory(fi);
        if (!fhOffsetChecked) {
            canSetFileInfoBits = fi.fh.offset() == FI_FH_OFFSET;
            fhOffsetChecked = true;
            if (!canSetFileInfoBits) {
                LOG.warning("unexpected fuse_file_info layout; direct_io cannot be set per file");
            }
        }
        fi.fh.set(handle);
        if (canSetFileInfoBits) {
            int bits = p.getInt(FI_BITS_OFFSET);
            p.putInt(FI_BITS_OFFSET, direct ? bits | 1 : bits & ~1);
        }
    }

    private static long fileHandle(FuseFileInfo fi) {
        return fi.fh.get();
    }

    /** At most a few error lines a second, so a failing disk cannot flood the log. */
    static final class ErrorLog {
        private long windowStart;
        private int inWindow;
        private long suppressed;

        synchronized void log(String line) {
            long now = System.nanoTime();
            if (now - windowStart > 1_000_000_000L) {
                if (suppressed > 0) {
                    LOG.warning(suppressed + " more I/O errors not shown");
                }
                windowStart = now;
                inWindow = 0;
                suppressed = 0;
            }
            if (inWindow++ < 5) {
                LOG.warning(line);
            } else {
                suppressed++;
            }
        }
    }
}
