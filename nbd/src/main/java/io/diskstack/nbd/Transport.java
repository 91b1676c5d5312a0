package io.diskstack.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * A connected byte stream, plain or TLS, in blocking mode. Reads come from one thread at a time;
 * writers serialise themselves (a whole message under one lock).
 */
public abstract class Transport implements AutoCloseable {
    /** Fills {@code dst} to its limit; EOFException if the peer closed first. */
    public abstract void readFully(ByteBuffer dst) throws IOException;

    /** Writes every buffer from its position to its limit, in order. */
    public abstract void write(ByteBuffer... srcs) throws IOException;

    /** True once {@link #startTls} made this a TLS stream. */
    public abstract boolean isTls();

    /** The TLS version and cipher suite in use ({@code TLSv1.3 TLS_AES_128_GCM_SHA256}), or null if plain. */
    public String tlsProtocol() {
        return null;
    }

    @Override
    public abstract void close();

    /** Closes the connection under any thread blocked on it, as a peer that vanished would. */
    public void abort() {
        close();
    }

    /**
     * Upgrades to TLS (NBD_OPT_STARTTLS) with {@code creds}, on the side they were made for, and
     * completes the handshake; the returned transport replaces this one. {@code peerHost} is
     * checked against the server's certificate on an x509 client.
     */
    public abstract Transport startTls(TlsCreds creds, String peerHost) throws IOException;

    public static Transport of(SocketChannel channel) {
        return new Plain(channel);
    }

    /** A socket channel in blocking mode; scatter/gather I/O straight from direct buffers. */
    static final class Plain extends Transport {
        private final SocketChannel channel;

        Plain(SocketChannel channel) {
            this.channel = channel;
        }

        @Override
        public void readFully(ByteBuffer dst) throws IOException {
            while (dst.hasRemaining()) {
                if (channel.read(dst) < 0) {
                    throw new EOFException("the peer closed the connection");
                }
            }
        }

        @Override
        public void write(ByteBuffer... srcs) throws IOException {
            long left = 0;
            for (ByteBuffer b : srcs) {
                left += b.remaining();
            }
            while (left > 0) {
                left -= channel.write(srcs);
            }
        }

        @Override
        public boolean isTls() {
            return false;
        }

        @Override
        public void close() {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing: nothing left to do
            }
        }

        @Override
        public Transport startTls(TlsCreds creds, String peerHost) throws IOException {
            return creds.handshake(channel, peerHost);
        }
    }
}
