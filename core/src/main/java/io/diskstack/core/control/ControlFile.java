package io.diskstack.core.control;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import java.io.IOException;
import java.util.function.Supplier;

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
    static ControlFile readOnly(Supplier<String> content) {
        return content::get;
    }

    /** What writing a command file does with the text written (its trailing newline removed). */
    interface Command {
        void run(String text) throws IOException;
    }

    /**
     * A file you write a command or a value to: reading shows {@code content} (a usage line, a
     * listing, the value), writing runs {@code command}.
     */
    static ControlFile command(Supplier<String> content, Command command) {
        return new ControlFile() {
            @Override
            public String read() {
                return content.get();
            }

            @Override
            public boolean isWritable() {
                return true;
            }

            @Override
            public void write(String text) throws IOException {
                command.run(text);
            }
        };
    }
}
