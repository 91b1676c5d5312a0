package io.diskstack.nbd;

import io.diskstack.core.ConfigException;
import io.diskstack.core.objects.ObjectDriver;
import io.diskstack.core.options.NodeOptions;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * {@code --object tls-creds-x509,id=ID,dir=DIR,endpoint=server|client[,verify-peer=on|off]}, with
 * QEMU's files in DIR: {@code ca-cert.pem}, and {@code server-cert.pem} + {@code server-key.pem}
 * (a server) or {@code client-cert.pem} + {@code client-key.pem} (a client, optional). Keys in
 * PKCS#8 or PKCS#1 (RSA) PEM, as certtool and openssl write them. A file that is missing or
 * unreadable is named in a one-line error; its content never is.
 */
public final class TlsCredsX509Driver implements ObjectDriver {
    private static final Pattern PEM = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");

    @Override
    public String qomType() {
        return "tls-creds-x509";
    }

    @Override
    public Object create(String id, NodeOptions o, Path baseDir) {
        Path dir = baseDir.resolve(o.requireString("dir")).toAbsolutePath().normalize();
        boolean server = TlsCreds.readEndpoint(o);
        boolean verifyPeer = o.optBool("verify-peer", true);
        if (o.has("passwordid")) {
            throw o.error("passwordid", "is not supported: give the key unencrypted");
        }
        if (!Files.isDirectory(dir)) {
            throw o.error("dir", "'" + dir + "' is not a folder");
        }
        try {
            KeyStore trust = KeyStore.getInstance("PKCS12");
            trust.load(null, null);
            Path ca = dir.resolve("ca-cert.pem");
            boolean needCa = !server || verifyPeer;
            if (needCa || Files.exists(ca)) {
                int i = 0;
                for (Certificate c : certificates(o, ca)) {
                    trust.setCertificateEntry("ca" + i++, c);
                }
            }
            KeyManagerFactory kmf = null;
            String prefix = server ? "server" : "client";
            Path cert = dir.resolve(prefix + "-cert.pem");
            Path key = dir.resolve(prefix + "-key.pem");
            if (server || Files.exists(cert)) {
                List<Certificate> chain = certificates(o, cert);
                PrivateKey privateKey = privateKey(o, key);
                KeyStore keys = KeyStore.getInstance("PKCS12");
                keys.load(null, null);
                char[] password = new char[0];
                keys.setKeyEntry("key", privateKey, password, chain.toArray(new Certificate[0]));
                kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(keys, password);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trust);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), new SecureRandom());
            return new X509TlsCreds(id, server, verifyPeer, context);
        } catch (GeneralSecurityException | IOException e) {
            throw new ConfigException(o.owner() + ": cannot set up TLS from '" + dir + "': " + e.getClass().getSimpleName());
        }
    }

    private static byte[] readFile(NodeOptions o, Path file) {
        return CredsFiles.read(o.owner(), file);
    }

    private static List<Certificate> certificates(NodeOptions o, Path file) {
        byte[] pem = readFile(o, file);
        try {
            Collection<? extends Certificate> certs = CertificateFactory.getInstance("X.509")
                    .generateCertificates(new ByteArrayInputStream(pem));
            if (certs.isEmpty()) {
                throw new ConfigException(o.owner() + ": '" + file + "' holds no certificate");
            }
            return new ArrayList<>(certs);
        } catch (GeneralSecurityException e) {
            throw new ConfigException(o.owner() + ": '" + file + "' is not a PEM certificate");
        }
    }

    private static PrivateKey privateKey(NodeOptions o, Path file) {
        byte[] pem = readFile(o, file);
        String text = new String(pem, StandardCharsets.US_ASCII);
        Arrays.fill(pem, (byte) 0);
        Matcher m = PEM.matcher(text);
        while (m.find()) {
            String kind = m.group(1);
            byte[] der = Base64.getMimeDecoder().decode(m.group(2));
            try {
                switch (kind) {
                    case "PRIVATE KEY" -> {
                        return decodePkcs8(der);
                    }
                    case "RSA PRIVATE KEY" -> {
                        return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(rsaPkcs1ToPkcs8(der)));
                    }
                    default -> {
                        // parameters or other blocks: keep looking
                    }
                }
            } catch (GeneralSecurityException e) {
                throw new ConfigException(o.owner() + ": '" + file + "' holds a key this JDK cannot read");
            } finally {
                Arrays.fill(der, (byte) 0);
            }
        }
        throw new ConfigException(o.owner() + ": '" + file + "' holds no unencrypted PEM private key "
                + "(PRIVATE KEY or RSA PRIVATE KEY)");
    }

    private static PrivateKey decodePkcs8(byte[] der) throws GeneralSecurityException {
        GeneralSecurityException last = null;
        for (String alg : new String[] {"RSA", "EC", "Ed25519", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException e) {
                last = e;
            }
        }
        throw last;
    }

    /** Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo (version 0, rsaEncryption, NULL). */
    static byte[] rsaPkcs1ToPkcs8(byte[] pkcs1) {
        byte[] algorithm = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01,
            0x01, 0x01, 0x05, 0x00};
        byte[] version = {0x02, 0x01, 0x00};
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(version);
        body.writeBytes(algorithm);
        body.write(0x04);
        writeLength(body, pkcs1.length);
        body.writeBytes(pkcs1);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x30);
        writeLength(out, body.size());
        out.writeBytes(body.toByteArray());
        return out.toByteArray();
    }

    private static void writeLength(ByteArrayOutputStream out, int length) {
        if (length < 0x80) {
            out.write(length);
        } else if (length < 0x100) {
            out.write(0x81);
            out.write(length);
        } else if (length < 0x10000) {
            out.write(0x82);
            out.write(length >> 8);
            out.write(length);
        } else {
            out.write(0x83);
            out.write(length >> 16);
            out.write(length >> 8);
            out.write(length);
        }
    }
}
