package io.diskstack.fuse;

import java.io.IOException;
import java.nio.file.Path;
import java.util.logging.Logger;

/**
 * systemd's notify protocol ({@code Type=notify}): {@code READY=1} once the disks answer,
 * {@code STOPPING=1} on the way down, each a datagram to the socket {@code $NOTIFY_SOCKET}
 * names. Without that variable there is nobody to tell.
 */
final class SystemdNotify implements MountListener {
    private static final Logger LOG = Logger.getLogger(SystemdNotify.class.getName());
    private final String socket;

    private SystemdNotify(String socket) {
        this.socket = socket;
    }

    /** The notifier for {@code $NOTIFY_SOCKET}, or null when it is not set. */
    static SystemdNotify fromEnvironment() {
        String s = System.getenv("NOTIFY_SOCKET");
        return s == null || s.isEmpty() ? null : new SystemdNotify(s);
    }

    @Override
    public void ready(Path mountpoint, int disks) throws IOException {
        // The service counts as started only with this: a failure fails the start, not later.
        UnixDatagram.send(socket, "READY=1\nSTATUS=serving " + disks + (disks == 1 ? " disk" : " disks") + " at "
                + mountpoint + "\n");
    }

    @Override
    public void stopping() {
        try {
            UnixDatagram.send(socket, "STOPPING=1\nSTATUS=unmounting\n");
        } catch (IOException e) {
            LOG.warning("cannot tell systemd the mount is stopping: " + e.getMessage());
        }
    }
}
