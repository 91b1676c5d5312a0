package io.diskstack.core;

/**
 * Bad input that is the user's to fix: a config key, an option value, a missing or unreadable
 * image. The message is one line that names the node, object or file and the key. The command
 * line turns it into exit code 2.
 */
public class ConfigException extends RuntimeException {
    private final Errno errno;

    public ConfigException(String message) {
        this(message, Errno.EINVAL);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
        this.errno = Errno.EINVAL;
    }

    /** With the errno a control file's writer sees: EINVAL for bad input, EBUSY for a conflict. */
    public ConfigException(String message, Errno errno) {
        super(message);
        this.errno = errno;
    }

    public Errno errno() {
        return errno;
    }
}
