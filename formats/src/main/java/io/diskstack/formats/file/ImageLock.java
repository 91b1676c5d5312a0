package io.diskstack.formats.file;

import io.diskstack.core.ConfigException;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.logging.Logger;

/**
 * QEMU's image locking, so that diskstack and QEMU (qemu-img, qemu-io, qemu-storage-daemon, a
 * VM) see each other's use of an image. Each permission has a bit: consistent read, write,
 * write-unchanged, resize. A user holds a shared OFD lock on byte 100+bit for each permission
 * it has, and on byte 200+bit for each one it does not let others have. Opening fails if
 * someone else does not share a permission we need, or needs one we do not share.
 *
 * <p>A node holds consistent-read (and write and resize when writable) and does not share
 * write or resize, as QEMU's image nodes do: a mounted image cannot be written by anyone else,
 * and a read-only image (a backing file) can be shared by many readers.
 */
final class ImageLock {
    private static final Logger LOG = Logger.getLogger(ImageLock.class.getName());
    static final int CONSISTENT_READ = 1;
    static final int WRITE = 1 << 1;
    static final int RESIZE = 1 << 3;
    private static final String[] NAMES = {"consistent read", "write", "write unchanged", "resize"};
    private static final int PERM_BASE = 100;
    private static final int SHARED_BASE = 200;
    private static final int EINVAL = 22;

    enum Locking { AUTO, ON, OFF }

    private ImageLock() {}

    /**
     * Takes the locks for a node that needs {@code perms} and does not share {@code unshared},
     * or fails naming the permission that conflicts.
     */
    static void acquire(NativeFile file, Path path, boolean writable, Locking locking, NodeOptions options)
            throws IOException {
        if (locking == Locking.OFF) {
            return;
        }
        int perms = writable ? CONSISTENT_READ | WRITE | RESIZE : CONSISTENT_READ;
        int unshared = WRITE | RESIZE;
        for (int bit = 0; bit < NAMES.length; bit++) {
            int mask = 1 << bit;
            int err = 0;
            if ((perms & mask) != 0) {
                err = file.lockByte(NativeFile.F_RDLCK, PERM_BASE + bit);
            }
            if (err == 0 && (unshared & mask) != 0) {
                err = file.lockByte(NativeFile.F_RDLCK, SHARED_BASE + bit);
            }
            if (err != 0) {
                if (locking == Locking.AUTO && err == EINVAL) {
                    LOG.fine(() -> path + ": the file system has no OFD locks; not locking it");
                    return;
                }
                throw options.error("locking", "cannot lock '" + path + "': " + NativeFile.describe(err));
            }
        }
        for (int bit = 0; bit < NAMES.length; bit++) {
            int mask = 1 << bit;
            if ((perms & mask) != 0 && file.byteLockedByOthers(SHARED_BASE + bit)) {
                throw conflict(options, path, "does not share the \"" + NAMES[bit] + "\" permission this needs");
            }
            if ((unshared & mask) != 0 && file.byteLockedByOthers(PERM_BASE + bit)) {
                throw conflict(options, path, "holds the \"" + NAMES[bit] + "\" permission");
            }
        }
    }

    /** Drops the write and resize permissions: the node became a read-only backing file. */
    static void releaseWrite(NativeFile file) {
        file.lockByte(NativeFile.F_UNLCK, PERM_BASE + Integer.numberOfTrailingZeros(WRITE));
        file.lockByte(NativeFile.F_UNLCK, PERM_BASE + Integer.numberOfTrailingZeros(RESIZE));
    }

    private static ConfigException conflict(NodeOptions options, Path path, String what) {
        return options.error("filename", "'" + path + "' is in use: another process (or node) " + what
                + " (QEMU's image locking; locking=off skips this check)");
    }
}
