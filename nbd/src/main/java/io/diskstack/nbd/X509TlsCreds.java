package io.diskstack.nbd;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLEngine;

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
        boolean client = !server;
        SSLEngine engine = client && peerHost != null ? context.createSSLEngine(peerHost, -1) : context.createSSLEngine();
        engine.setUseClientMode(client);
        SSLParameters params = engine.getSSLParameters();
        params.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
        if (client && peerHost != null) {
            params.setEndpointIdentificationAlgorithm("HTTPS");
        }
        if (!client) {
            params.setNeedClientAuth(verifyPeer);
        }
        engine.setSSLParameters(params);
        return SslEngineTransport.handshake(channel, engine);
    }

    @Override
    public String toString() {
        return "tls-creds '" + id + "' (" + (server ? "server" : "client") + ")";
    }
}
