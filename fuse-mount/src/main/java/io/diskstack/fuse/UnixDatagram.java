package io.diskstack.fuse;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * Sends one datagram to an AF_UNIX socket, named by a path or, with a leading {@code @}, in the
 * abstract namespace: what systemd's notify socket and syslog's {@code /dev/log} take. Java's
 * own Unix domain sockets are streams only.
 */
final class UnixDatagram {
    private static final short AF_UNIX = 1;
    private static final int SOCK_DGRAM = 2;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int MSG_NOSIGNAL = 0x4000;
    /** struct sockaddr_un: sa_family_t, then 108 bytes of path. */
    private static final int PATH_MAX = 108;

    /** The socket calls, bound once. */
    public interface LibC {
        int socket(int domain, int type, int protocol);

        long sendto(int fd, byte[] buf, long len, int flags, Pointer addr, int addrlen);

        int close(int fd);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

    private UnixDatagram() {}

    static void send(String address, String message) throws IOException {
        byte[] name = address.startsWith("@") ? address.substring(1).getBytes(StandardCharsets.UTF_8)
                : address.getBytes(StandardCharsets.UTF_8);
        boolean isAbstract = address.startsWith("@");
        if (name.length == 0 || name.length + 1 > PATH_MAX) {
            throw new IOException("socket address '" + address + "' is empty or too long");
        }
        Pointer addr = Memory.allocateDirect(RUNTIME, 2 + PATH_MAX, true);
        addr.putShort(0, AF_UNIX);
        addr.put(isAbstract ? 3 : 2, name, 0, name.length);
        int addrLen = 2 + name.length + 1;
        int fd = LIBC.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new IOException("socket: errno " + RUNTIME.getLastError());
        }
        try {
            byte[] data = message.getBytes(StandardCharsets.UTF_8);
            if (LIBC.sendto(fd, data, data.length, MSG_NOSIGNAL, addr, addrLen) < 0) {
                throw new IOException("sending to '" + address + "': errno " + RUNTIME.getLastError());
            }
        } finally {
            LIBC.close(fd);
        }
    }
}
