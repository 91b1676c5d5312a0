package io.diskstack.nbd.testing;

import static io.diskstack.core.testing.Shell.run;

import io.diskstack.core.testing.Shell;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** A CA, a server certificate for localhost and 127.0.0.1, and a client certificate, made by certtool in QEMU's layout. */
public final class TestCertificates {
    private TestCertificates() {}

    /** Writes {@code ca-cert.pem}, {@code server-cert.pem}, {@code server-key.pem} to {@code server}, the client's to {@code client}. */
    public static void make(Path work, Path server, Path client) throws IOException {
        Shell.requireTool("certtool");
        Files.createDirectories(server);
        Files.createDirectories(client);
        Files.writeString(work.resolve("ca.info"), "cn = diskstack test CA\nca\ncert_signing_key\nexpiration_days = 2\n");
        Files.writeString(work.resolve("server.info"), "organization = diskstack\ncn = localhost\ndns_name = localhost\n"
                + "ip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n");
        Files.writeString(work.resolve("client.info"), "organization = diskstack\ncn = client\ntls_www_client\n"
                + "encryption_key\nsigning_key\nexpiration_days = 2\n");
        String ca = work.resolve("ca-key.pem").toString();
        run("certtool", "--generate-privkey", "--outfile", ca).ok();
        run("certtool", "--generate-self-signed", "--load-privkey", ca, "--template", work.resolve("ca.info").toString(),
                "--outfile", server.resolve("ca-cert.pem").toString()).ok();
        Files.copy(server.resolve("ca-cert.pem"), client.resolve("ca-cert.pem"));
        for (String who : List.of("server", "client")) {
            Path d = who.equals("server") ? server : client;
            run("certtool", "--generate-privkey", "--outfile", d.resolve(who + "-key.pem").toString()).ok();
            run("certtool", "--generate-certificate", "--load-privkey", d.resolve(who + "-key.pem").toString(),
                    "--load-ca-certificate", server.resolve("ca-cert.pem").toString(), "--load-ca-privkey", ca,
                    "--template", work.resolve(who + ".info").toString(),
                    "--outfile", d.resolve(who + "-cert.pem").toString()).ok();
        }
    }
}
