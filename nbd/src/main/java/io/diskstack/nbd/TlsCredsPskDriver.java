package io.diskstack.nbd;

import io.diskstack.core.ConfigException;
import io.diskstack.core.objects.ObjectDriver;
import io.diskstack.core.options.NodeOptions;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code --object tls-creds-psk,id=ID,dir=DIR,endpoint=server|client[,username=NAME]}, as in
 * QEMU: DIR holds GnuTLS's {@code keys.psk} ({@code username:hexkey} lines, as psktool writes).
 * A client sends {@code username} (default {@code qemu}) and uses that user's key; a server
 * accepts any user in the file.
 */
public final class TlsCredsPskDriver implements ObjectDriver {
    static final String KEYS_FILE = "keys.psk";

    @Override
    public String qomType() {
        return "tls-creds-psk";
    }

    @Override
    public Object create(String id, NodeOptions o, Path baseDir) {
        Path dir = baseDir.resolve(o.requireString("dir")).toAbsolutePath().normalize();
        boolean server = TlsCreds.readEndpoint(o);
        String username = o.optString("username", "qemu");
        // verify-peer means nothing with PSK: both sides always prove they hold the key
        o.optBool("verify-peer", true);
        if (!Files.isDirectory(dir)) {
            throw o.error("dir", "'" + dir + "' is not a folder");
        }
        Path file = dir.resolve(KEYS_FILE);
        PskKeys all = PskKeys.read(o.owner(), file);
        if (server) {
            return new PskTlsCreds(id, true, null, all);
        }
        try (all) {
            if (!all.has(username)) {
                throw new ConfigException(o.owner() + ": username '" + username + "' is not in '" + file + "'");
            }
            return new PskTlsCreds(id, false, username, all.only(username));
        }
    }
}
