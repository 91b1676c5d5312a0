package io.diskstack.fuse;

import java.io.PrintStream;
import java.nio.file.Path;
import jnr.ffi.LibraryLoader;

/**
 * The mount process a {@code --daemonize} started: it runs in a session of its own (a Ctrl-C or
 * a closed terminal does not reach it), reports to its parent on stderr until the mount is
 * ready, then says so with {@link #READY} and lets go of the parent's pipe: later messages go to
 * syslog.
 */
final class DaemonChild implements MountListener {
    /** The line that tells the parent the mount is ready; no log line can hold its control character. */
    static final String READY = "\u0001diskstack ready";
    private static final int O_RDWR = 2;

    /** The process calls, bound once. */
    public interface LibC {
        int setsid();

        int open(String path, int flags);

        int dup2(int from, int to);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    private final int verbosity;

    /** Leaves the parent's session: from now on no terminal signal reaches this process. */
    DaemonChild(int verbosity) {
        this.verbosity = verbosity;
        LIBC.setsid();
    }

    @Override
    public void ready(Path mountpoint, int disks) {
        Logging.toSyslog(verbosity);
        PrintStream err = System.err;
        err.println(READY);
        err.flush();
        int devNull = LIBC.open("/dev/null", O_RDWR);
        if (devNull >= 0) {
            for (int fd = 0; fd <= 2; fd++) {
                LIBC.dup2(devNull, fd);
            }
        }
    }
}
