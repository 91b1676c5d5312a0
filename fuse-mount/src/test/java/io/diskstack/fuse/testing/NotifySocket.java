package io.diskstack.fuse.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;

/**
 * The receiving end of systemd's notify protocol, for tests: an AF_UNIX datagram socket bound to
 * a path or, with a leading {@code @}, an abstract name, as {@code $NOTIFY_SOCKET} names it.
 */
public final class NotifySocket implements AutoCloseable {
    /** The socket calls the test needs. */
    public interface LibC {
        int socket(int domain, int type, int protocol);

        int bind(int fd, Pointer addr, int addrlen);

        int setsockopt(int fd, int level, int name, Pointer value, int len);

        long recv(int fd, byte[] buf, long len, int flags);

        int close(int fd);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);
    private static final int SOL_SOCKET = 1;
    private static final int SO_RCVTIMEO = 20;
    private final int fd;
    private final String address;

    public NotifySocket(String address) throws IOException {
        this.address = address;
        byte[] name = (address.startsWith("@") ? address.substring(1) : address).getBytes(StandardCharsets.UTF_8);
        Pointer addr = Memory.allocateDirect(RUNTIME, 110, true);
        addr.putShort(0, (short) 1);
        addr.put(address.startsWith("@") ? 3 : 2, name, 0, name.length);
        fd = LIBC.socket(1, 2, 0);
        if (fd < 0 || LIBC.bind(fd, addr, 2 + name.length + 1) != 0) {
            throw new IOException("cannot bind " + address + ": errno " + RUNTIME.getLastError());
        }
    }

    /** What $NOTIFY_SOCKET should say. */
    public String address() {
        return address;
    }

    /** The next datagram, or null if none comes within {@code seconds}. */
    public String receive(int seconds) {
        Pointer tv = Memory.allocateDirect(RUNTIME, 16, true);
        tv.putLong(0, seconds);
        LIBC.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
        byte[] buf = new byte[4096];
        long n = LIBC.recv(fd, buf, buf.length, 0);
        return n < 0 ? null : new String(buf, 0, (int) n, StandardCharsets.UTF_8);
    }

    @Override
    public void close() throws IOException {
        LIBC.close(fd);
        if (!address.startsWith("@")) {
            Files.deleteIfExists(Path.of(address));
        }
    }
}
