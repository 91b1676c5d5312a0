package io.diskstack.core.control;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import java.io.IOException;

/**
 * One file under {@code MNT/.control} (sysfs style: one value or one command per file). Reading
 * shows state and must be cheap: never wait for disk I/O. Writing performs: a failure throws a
 * {@link BlockIOException} whose errno the writer sees and whose message goes to the
 * {@code last-error} file of the same folder.
 */
public interface ControlFile {
    /** The current content, ending with a newline. */
    String read();

    default boolean isWritable() {
        return false;
    }

    /** Performs the command or sets the value; {@code text} has its trailing newline removed. */
    default void write(String text) throws IOException {
        throw new BlockIOException(Errno.EACCES, "this control file is read-only");
    }

    /** A read-only file whose content comes from the supplier each time it is opened. */
    static ControlFile readOnly(java.util.function.Supplier<String> content) {
        return content::get;
    }
}
