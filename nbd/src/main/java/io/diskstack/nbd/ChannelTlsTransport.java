package io.diskstack.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import jdk.net.ExtendedSocketOptions;

/**
 * What the TLS transports (JSSE's SSLEngine for x509, Bouncy Castle's for PSK) share: they read
 * and write the socket channel themselves, inet or Unix, and acknowledge every read at once.
 */
abstract class ChannelTlsTransport extends Transport {
    protected final SocketChannel channel;
    private final boolean quickAck;

    ChannelTlsTransport(SocketChannel channel) {
        this.channel = channel;
        this.quickAck = supportsQuickAck(channel);
    }

    static boolean supportsQuickAck(SocketChannel channel) {
        return channel.supportedOptions().contains(ExtendedSocketOptions.TCP_QUICKACK);
    }

    /**
     * Reads what the channel has (at least one byte, unless {@code dst} is full) into {@code dst};
     * -1 if the peer closed. Then asks for an immediate ACK: qemu-nbd's GnuTLS sends a reply's
     * header and data as two records with Nagle on, so the data waits for our ACK of the header,
     * which Linux would delay up to 40 ms.
     */
    static int readAndAck(SocketChannel channel, ByteBuffer dst, boolean quickAck) throws IOException {
        int n;
        do {
            n = channel.read(dst);
        } while (n == 0 && dst.hasRemaining());
        if (n > 0 && quickAck) {
            channel.setOption(ExtendedSocketOptions.TCP_QUICKACK, true);
        }
        return n;
    }

    /** {@link #readAndAck}, with EOFException if the peer closed. */
    protected final int readSome(ByteBuffer dst) throws IOException {
        int n = readAndAck(channel, dst, quickAck);
        if (n < 0) {
            throw new EOFException("the peer closed the connection");
        }
        return n;
    }

    @Override
    public final boolean isTls() {
        return true;
    }

    /** Closes the socket under any blocked reader or writer, without close_notify. */
    @Override
    public void abort() {
        closeChannel();
    }

    protected final void closeChannel() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing: nothing left to do
        }
    }

    @Override
    public final Transport startTls(TlsCreds creds, String peerHost) throws IOException {
        throw new IOException("TLS is already running");
    }
}
