package io.diskstack.nbd;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A misbehaving NBD server on loopback, for the client's bad-peer tests: each connection runs a
 * script. A failure of the script thread other than the client going away fails the test
 * ({@link #check()}).
 */
final class FakeServer implements AutoCloseable {
    interface Script {
        void run(DataInputStream in, DataOutputStream out) throws IOException;
    }

    private final ServerSocket listener;
    private final Thread thread;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    FakeServer(Script script) throws IOException {
        listener = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
        thread = new Thread(() -> {
            while (!listener.isClosed()) {
                try (Socket s = listener.accept()) {
                    script.run(new DataInputStream(s.getInputStream()), new DataOutputStream(s.getOutputStream()));
                } catch (java.io.EOFException | java.net.SocketException e) {
                    // the client went away, or the listener closed: as a script may expect
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }
        }, "fake-nbd-server");
        thread.setDaemon(true);
        thread.start();
    }

    int port() {
        return listener.getLocalPort();
    }

    String nodeOptions() {
        return "server.type=inet,server.host=127.0.0.1,server.port=" + port();
    }

    /** Negotiates as a good server would, for an export of {@code size} bytes with structured replies. */
    static void negotiate(DataInputStream in, DataOutputStream out, long size) throws IOException {
        out.writeLong(Nbd.NBDMAGIC);
        out.writeLong(Nbd.IHAVEOPT);
        out.writeShort(Nbd.FLAG_FIXED_NEWSTYLE);
        out.flush();
        in.readInt();
        while (true) {
            in.readLong();
            int option = in.readInt();
            int length = in.readInt();
            in.readFully(new byte[length]);
            if (option == Nbd.OPT_GO) {
                reply(out, option, Nbd.REP_INFO, 12);
                out.writeShort(Nbd.INFO_EXPORT);
                out.writeLong(size);
                out.writeShort(Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_SEND_FLUSH);
                reply(out, option, Nbd.REP_ACK, 0);
                out.flush();
                return;
            }
            reply(out, option, Nbd.REP_ACK, 0);
            out.flush();
        }
    }

    static void reply(DataOutputStream out, int option, int type, int length) throws IOException {
        out.writeLong(Nbd.OPTION_REPLY_MAGIC);
        out.writeInt(option);
        out.writeInt(type);
        out.writeInt(length);
    }

    /** Rethrows what went wrong in the server thread. */
    void check() {
        Throwable t = failure.get();
        if (t != null) {
            throw new AssertionError("the fake server failed", t);
        }
    }

    @Override
    public void close() throws IOException {
        listener.close();
        check();
    }
}
