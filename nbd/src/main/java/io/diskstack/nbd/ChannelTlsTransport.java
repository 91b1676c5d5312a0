package io.diskstack.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * What the TLS transports (JSSE's SSLEngine for x509, Bouncy Castle's for PSK) share: they read
 * and write the socket channel themselves, inet or Unix, and acknowledge every read at once
 * ({@link Transport#readAndAck}).
 */
abstract class ChannelTlsTransport extends Transport {
    protected final SocketChannel channel;
    private final boolean quickAck;

    ChannelTlsTransport(SocketChannel channel) {
        this.channel = channel;
        this.quickAck = supportsQuickAck(channel);
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
