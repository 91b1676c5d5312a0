package io.diskstack.nbd;

import java.io.IOException;
import java.net.Socket;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;

/**
 * A {@code tls-creds-x509} object: the TLS context made from QEMU's file layout in its folder,
 * for one endpoint. Key material stays inside the context and never reaches messages.
 *
 * @param verifyPeer a server asks clients for a certificate signed by the CA; a client always
 *                   checks the server's
 */
public record X509TlsCreds(String id, boolean server, boolean verifyPeer, SSLContext context) implements TlsCreds {
    @Override
    public String kind() {
        return "x509";
    }

    @Override
    public Transport handshake(SocketChannel channel, String peerHost) throws IOException {
        Socket socket;
        try {
            socket = channel.socket();
        } catch (UnsupportedOperationException e) {
            throw new IOException("TLS is supported on inet sockets only");
        }
        boolean client = !server;
        SSLSocket tls = (SSLSocket) context.getSocketFactory().createSocket(socket,
                peerHost == null ? "localhost" : peerHost, socket.getPort(), true);
        tls.setUseClientMode(client);
        SSLParameters params = tls.getSSLParameters();
        params.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
        if (client && peerHost != null) {
            params.setEndpointIdentificationAlgorithm("HTTPS");
        }
        if (!client) {
            params.setNeedClientAuth(verifyPeer);
        }
        tls.setSSLParameters(params);
        tls.startHandshake();
        return new Transport.Tls(tls, channel);
    }

    @Override
    public String toString() {
        return "tls-creds '" + id + "' (" + (server ? "server" : "client") + ")";
    }
}
