package io.diskstack.nbd;

import javax.net.ssl.SSLContext;

/**
 * A {@code tls-creds-x509} object: the TLS context made from QEMU's file layout in its folder,
 * for one endpoint. Key material stays inside the context and never reaches messages.
 *
 * @param verifyPeer a server asks clients for a certificate signed by the CA; a client always
 *                   checks the server's
 */
public record TlsCreds(String id, boolean server, boolean verifyPeer, SSLContext context) {
    @Override
    public String toString() {
        return "tls-creds '" + id + "' (" + (server ? "server" : "client") + ")";
    }
}
