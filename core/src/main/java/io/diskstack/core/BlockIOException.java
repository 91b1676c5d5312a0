package io.diskstack.core;

import java.io.IOException;

/** An I/O failure that carries the errno a FUSE client should see. */
public class BlockIOException extends IOException {
    private final Errno errno;

    public BlockIOException(Errno errno, String message) {
        super(message);
        this.errno = errno;
    }

    public BlockIOException(Errno errno, String message, Throwable cause) {
        super(message, cause);
        this.errno = errno;
    }

    public Errno errno() {
        return errno;
    }

    /** The errno for any failure: EIO unless the exception says otherwise. */
    public static Errno errnoOf(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof BlockIOException b) {
                return b.errno();
            }
        }
        return Errno.EIO;
    }
}
