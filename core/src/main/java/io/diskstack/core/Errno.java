package io.diskstack.core;

/** The errno values the data path reports; the FUSE layer returns {@code -errno}. */
public enum Errno {
    EPERM(1), ENOENT(2), EIO(5), EAGAIN(11), ENOMEM(12), EACCES(13), EBUSY(16), EEXIST(17),
    ENODEV(19), EISDIR(21), EINVAL(22), EFBIG(27), ENOSPC(28), EROFS(30), ERANGE(34), ENOTSUP(95),
    ETIMEDOUT(110), ECANCELED(125);

    private final int code;

    Errno(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }
}
