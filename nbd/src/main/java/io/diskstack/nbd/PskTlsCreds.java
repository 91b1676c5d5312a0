package io.diskstack.nbd;

import java.io.IOException;
import java.nio.channels.SocketChannel;

/**
 * A {@code tls-creds-psk} object: the keys of its {@code keys.psk} and, on a client, the
 * username it sends as its PSK identity. Works over inet and Unix sockets alike.
 */
public final class PskTlsCreds implements TlsCreds, AutoCloseable {
    private final String id;
    private final boolean server;
    private final String username;
    private final PskKeys keys;

    /** @param username the identity a client sends (ignored on a server, which knows every user in {@code keys}) */
    PskTlsCreds(String id, boolean server, String username, PskKeys keys) {
        this.id = id;
        this.server = server;
        this.username = username;
        this.keys = keys;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public boolean server() {
        return server;
    }

    @Override
    public String kind() {
        return "psk";
    }

    /** The identity a client sends. */
    public String username() {
        return username;
    }

    PskKeys keys() {
        return keys;
    }

    @Override
    public Transport handshake(SocketChannel channel, String peerHost) throws IOException {
        return server ? PskTransport.accept(channel, keys) : PskTransport.connect(channel, username, keys);
    }

    @Override
    public void close() {
        keys.close();
    }

    @Override
    public String toString() {
        return "tls-creds '" + id + "' (psk, " + (server ? "server" : "client, username '" + username + "'") + ")";
    }
}
