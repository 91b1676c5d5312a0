package io.diskstack.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Vector;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.bouncycastle.tls.AlertDescription;
import org.bouncycastle.tls.BasicTlsPSKExternal;
import org.bouncycastle.tls.CipherSuite;
import org.bouncycastle.tls.PSKTlsClient;
import org.bouncycastle.tls.PSKTlsServer;
import org.bouncycastle.tls.ProtocolVersion;
import org.bouncycastle.tls.PskIdentity;
import org.bouncycastle.tls.SecurityParameters;
import org.bouncycastle.tls.TlsAuthentication;
import org.bouncycastle.tls.TlsClientProtocol;
import org.bouncycastle.tls.TlsContext;
import org.bouncycastle.tls.TlsCredentials;
import org.bouncycastle.tls.TlsFatalAlert;
import org.bouncycastle.tls.TlsFatalAlertReceived;
import org.bouncycastle.tls.TlsPSKExternal;
import org.bouncycastle.tls.TlsPSKIdentity;
import org.bouncycastle.tls.TlsPSKIdentityManager;
import org.bouncycastle.tls.TlsProtocol;
import org.bouncycastle.tls.TlsServerProtocol;
import org.bouncycastle.tls.TlsUtils;
import org.bouncycastle.tls.crypto.TlsCrypto;
import org.bouncycastle.tls.crypto.impl.jcajce.JcaTlsCryptoProvider;

/**
 * TLS with a pre-shared key (tls-creds-psk) through Bouncy Castle's TLS protocol in blocking
 * mode, straight over the socket channel. TLS 1.3 with an external PSK and (EC)DHE (psk_dhe_ke)
 * first, TLS 1.2 (EC)DHE-PSK suites for peers without it: forward secrecy either way. Same
 * contract as the JSSE transport: one reader at a time, writers serialise whole messages.
 */
final class PskTransport extends ChannelTlsTransport {
    /** SHA-256 suites only: an external PSK is bound to SHA-256, GnuTLS's and BC's default. */
    private static final Map<Integer, String> SUITE_NAMES = suites(
        CipherSuite.TLS_AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256",
        CipherSuite.TLS_CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite.TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256, "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256",
        CipherSuite.TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite.TLS_DHE_PSK_WITH_AES_128_GCM_SHA256, "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256",
        CipherSuite.TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256, "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256",
        CipherSuite.TLS_DHE_PSK_WITH_AES_128_CBC_SHA256, "TLS_DHE_PSK_WITH_AES_128_CBC_SHA256");
    private static final int[] SUITES = SUITE_NAMES.keySet().stream().mapToInt(Integer::intValue).toArray();
    /** The JCA crypto: the JDK's AES-GCM runs on AES-NI, BC's pure-Java one does not. */
    private static final TlsCrypto CRYPTO = new JcaTlsCryptoProvider().create(new SecureRandom());
    private static final SecureRandom RANDOM = new SecureRandom();

    private final TlsProtocol protocol;
    private final String negotiated;
    private final byte[] readChunk = new byte[64 << 10];
    private final byte[] writeChunk = new byte[64 << 10];
    private final ReentrantLock writeLock = new ReentrantLock();

    private PskTransport(SocketChannel channel, TlsProtocol protocol, String negotiated) {
        super(channel);
        this.protocol = protocol;
        this.negotiated = negotiated;
    }

    /** The client's handshake: sends {@code username} as the identity, with its key from {@code keys}. */
    static PskTransport connect(SocketChannel channel, String username, PskKeys keys) throws IOException {
        byte[] key = keys.key(username);
        if (key == null) {
            throw new IOException("no key for username '" + username + "'"); // the driver checked it
        }
        Client peer = new Client(username.getBytes(StandardCharsets.UTF_8), key);
        TlsClientProtocol protocol = new TlsClientProtocol(new ChannelIn(channel), new ChannelOut(channel));
        try {
            protocol.connect(peer);
        } catch (TlsFatalAlertReceived e) {
            throw refused(username, "the server sent alert " + AlertDescription.getName(e.getAlertDescription()));
        } catch (TlsFatalAlert e) {
            // GnuTLS (qemu-nbd) just closes the connection on a key it does not accept
            throw refused(username, peer.refusal != null ? peer.refusal : AlertDescription.getName(e.getAlertDescription()));
        } finally {
            Arrays.fill(key, (byte) 0);
        }
        return new PskTransport(channel, protocol, peer.negotiated);
    }

    private static ProtocolException refused(String username, String detail) {
        return new ProtocolException("the TLS-PSK handshake for username '" + username + "' failed (" + detail
                + "): is the username in the server's keys.psk, with the same key?");
    }

    /** The server's handshake: the client's identity must be a user in {@code keys}, with that key. */
    static PskTransport accept(SocketChannel channel, PskKeys keys) throws IOException {
        Server peer = new Server(keys);
        TlsServerProtocol protocol = new TlsServerProtocol(new ChannelIn(channel), new ChannelOut(channel));
        try {
            protocol.accept(peer);
        } catch (TlsFatalAlert | TlsFatalAlertReceived e) {
            short alert = e instanceof TlsFatalAlert f ? f.getAlertDescription()
                    : ((TlsFatalAlertReceived) e).getAlertDescription();
            throw new ProtocolException("TLS-PSK handshake failed: " + peer.failure(alert));
        }
        return new PskTransport(channel, protocol, peer.negotiated);
    }

    private static Map<Integer, String> suites(Object... pairs) {
        Map<Integer, String> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put((Integer) pairs[i], (String) pairs[i + 1]);
        }
        return m;
    }

    private static String describe(TlsContext context) {
        SecurityParameters params = context.getSecurityParametersConnection();
        return params.getNegotiatedVersion().getName().replace(" ", "v") + " " + SUITE_NAMES.getOrDefault(params.getCipherSuite(),
                "suite 0x" + Integer.toHexString(params.getCipherSuite()));
    }

    @Override
    public String tlsProtocol() {
        return negotiated;
    }

    @Override
    public void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            int n = protocol.readApplicationData(readChunk, 0, Math.min(readChunk.length, dst.remaining()));
            if (n < 0) {
                throw new EOFException("the peer closed the connection");
            }
            dst.put(readChunk, 0, n);
        }
    }

    @Override
    public void write(ByteBuffer... srcs) throws IOException {
        writeLock.lock();
        try {
            writeLocked(srcs);
        } finally {
            writeLock.unlock();
        }
    }

    private void writeLocked(ByteBuffer... srcs) throws IOException {
        int filled = 0;
        for (ByteBuffer b : srcs) {
            while (b.hasRemaining()) {
                int n = Math.min(writeChunk.length - filled, b.remaining());
                b.get(writeChunk, filled, n);
                filled += n;
                if (filled == writeChunk.length) {
                    protocol.writeApplicationData(writeChunk, 0, filled);
                    filled = 0;
                }
            }
        }
        if (filled > 0) {
            protocol.writeApplicationData(writeChunk, 0, filled);
        }
    }

    @Override
    public void close() {
        try {
            // BC sends close_notify outside the lock its data records take: hold ours, so it never
            // lands inside a message; a writer stuck on a peer that does not read keeps it, and
            // then the connection closes without close_notify
            if (writeLock.tryLock(1, TimeUnit.SECONDS)) {
                try {
                    protocol.close();
                } finally {
                    writeLock.unlock();
                }
            }
        } catch (IOException ignored) {
            // closing: nothing left to do
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closeChannel();
    }

    private static ProtocolVersion[] versions() {
        return ProtocolVersion.TLSv13.downTo(ProtocolVersion.TLSv12);
    }

    private static final class Client extends PSKTlsClient {
        private final byte[] identity;
        private final byte[] key;
        private String refusal;
        private String negotiated;

        Client(byte[] identity, byte[] key) {
            super(CRYPTO, (TlsPSKIdentity) null);
            this.identity = identity;
            this.key = key;
            // TLS 1.2: BC wipes the key it is handed, so each call gets a copy
            this.pskIdentity = new TlsPSKIdentity() {
                @Override
                public void skipIdentityHint() {
                }

                @Override
                public void notifyIdentityHint(byte[] hint) {
                }

                @Override
                public byte[] getPSKIdentity() {
                    return identity;
                }

                @Override
                public byte[] getPSK() {
                    return key.clone();
                }
            };
        }

        @Override
        protected ProtocolVersion[] getSupportedVersions() {
            return versions();
        }

        @Override
        public void notifyHandshakeComplete() throws IOException {
            super.notifyHandshakeComplete();
            negotiated = describe(context);
        }

        @Override
        protected int[] getSupportedCipherSuites() {
            return TlsUtils.getSupportedCipherSuites(getCrypto(), SUITES);
        }

        @Override
        public Vector getExternalPSKs() {
            Vector<TlsPSKExternal> psks = new Vector<>(1);
            psks.add(new BasicTlsPSKExternal(identity, getCrypto().createSecret(key))); // createSecret copies
            return psks;
        }

        @Override
        public TlsAuthentication getAuthentication() throws IOException {
            // TLS 1.3: the server did not take the PSK and wants to authenticate by certificate
            refusal = "the server did not accept the pre-shared key and offered a certificate instead";
            throw new TlsFatalAlert(AlertDescription.handshake_failure);
        }
    }

    private static final class Server extends PSKTlsServer {
        private final PskKeys keys;
        /** The last identity the client offered, for the error message. */
        private String offered;
        private boolean known;
        private String negotiated;

        Server(PskKeys keys) {
            super(CRYPTO, null);
            this.keys = keys;
            this.pskIdentityManager = new TlsPSKIdentityManager() {
                @Override
                public byte[] getHint() {
                    return null;
                }

                @Override
                public byte[] getPSK(byte[] identity) {
                    return lookUp(identity);
                }
            };
        }

        /**
         * The key for an identity; for one not in keys.psk a random key, as GnuTLS does, so
         * that an unknown username fails exactly as a wrong key does and a client cannot tell
         * which usernames exist.
         */
        private byte[] lookUp(byte[] identity) {
            offered = new String(identity, StandardCharsets.UTF_8);
            byte[] key = keys.key(offered);
            known = key != null;
            if (key == null) {
                key = new byte[32];
                RANDOM.nextBytes(key);
            }
            return key;
        }

        @Override
        protected ProtocolVersion[] getSupportedVersions() {
            return versions();
        }

        @Override
        public void notifyHandshakeComplete() throws IOException {
            super.notifyHandshakeComplete();
            negotiated = describe(context);
        }

        @Override
        protected int[] getSupportedCipherSuites() {
            return TlsUtils.getSupportedCipherSuites(getCrypto(), SUITES);
        }

        @Override
        protected boolean preferLocalCipherSuites() {
            return true; // AES-GCM first: the JDK runs it on AES-NI, ChaCha20 is much slower in Java
        }

        @Override
        public TlsPSKExternal getExternalPSK(Vector identities) {
            byte[] first = null;
            for (Object o : identities) {
                byte[] identity = ((PskIdentity) o).getIdentity();
                if (keys.has(new String(identity, StandardCharsets.UTF_8))) {
                    return external(identity);
                }
                first = first == null ? identity : first;
            }
            return first == null ? null : external(first); // unknown: fails as a wrong key would
        }

        private TlsPSKExternal external(byte[] identity) {
            byte[] key = lookUp(identity);
            try {
                return new BasicTlsPSKExternal(identity, getCrypto().createSecret(key));
            } finally {
                Arrays.fill(key, (byte) 0);
            }
        }

        @Override
        public TlsCredentials getCredentials() throws IOException {
            if (TlsUtils.isTLSv13(context)) {
                // no acceptable PSK, and no certificate to fall back on
                throw new TlsFatalAlert(AlertDescription.handshake_failure);
            }
            return super.getCredentials();
        }

        String failure(short alert) {
            if (offered == null) {
                return "the client offered no pre-shared key identity (" + AlertDescription.getName(alert) + ")";
            }
            String who = "username '" + Wire.printable(offered) + "'";
            if (!known) {
                return who + " is not in keys.psk";
            }
            return who + " did not prove it holds the key in keys.psk (" + AlertDescription.getName(alert) + ")";
        }
    }

    /**
     * The channel as BC's blocking input. Not Channels.newInputStream: it holds the channel's
     * blocking lock while a read blocks, which would stall every writer on this connection.
     */
    private static final class ChannelIn extends InputStream {
        private final SocketChannel channel;
        private final boolean quickAck;

        ChannelIn(SocketChannel channel) {
            this.channel = channel;
            this.quickAck = Transport.supportsQuickAck(channel);
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            return Transport.readAndAck(channel, ByteBuffer.wrap(b, off, len), quickAck);
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    private static final class ChannelOut extends OutputStream {
        private final SocketChannel channel;

        ChannelOut(SocketChannel channel) {
            this.channel = channel;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            ByteBuffer buf = ByteBuffer.wrap(b, off, len);
            while (buf.hasRemaining()) {
                channel.write(buf);
            }
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }
}
