package io.diskstack.nbd;

import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.channels.SocketChannel;

/**
 * A {@code tls-creds-*} object for one endpoint. Each kind knows how to run its own handshake,
 * so negotiation code never asks which kind it holds. Key material never reaches
 * {@link #toString()}, logs or messages.
 */
public sealed interface TlsCreds permits X509TlsCreds, PskTlsCreds {
    String id();

    /** True for endpoint=server. */
    boolean server();

    /** {@code x509} or {@code psk}, as in the QOM type's name. */
    String kind();

    /**
     * Runs the handshake on a connected socket (after NBD_OPT_STARTTLS), on the side this object
     * was made for; the returned transport carries the rest of the session.
     *
     * @param peerHost a client checks the server's certificate against it (x509 only; null: not checked)
     */
    Transport handshake(SocketChannel channel, String peerHost) throws IOException;

    /**
     * Reads the options both kinds take as QEMU does: {@code endpoint} ({@code client}, the
     * default, or {@code server}); true for a server. A GnuTLS {@code priority} string is left
     * unconsumed, so it is refused as an unknown option: ignoring a restriction the user asked
     * for would be worse than saying we cannot apply it.
     */
    static boolean readEndpoint(NodeOptions o) {
        String endpoint = o.optString("endpoint", "client");
        if (!endpoint.equals("server") && !endpoint.equals("client")) {
            throw o.error("endpoint", "value '" + endpoint + "' is not one of server, client");
        }
        return endpoint.equals("server");
    }
}
