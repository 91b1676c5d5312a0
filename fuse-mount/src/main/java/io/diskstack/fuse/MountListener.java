package io.diskstack.fuse;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Told about a mount's life by {@link FuseMount}: the pid file, systemd's notify socket and a
 * daemonized mount's parent each are one.
 */
interface MountListener {
    /** The mount is up and answers for its disks. A failure here fails the mount. */
    default void ready(Path mountpoint, int disks) throws IOException {}

    /** The mount is going down (a signal, or an unmount). */
    default void stopping() {}

    /** Everything is closed; the process is about to exit. */
    default void stopped() {}
}
