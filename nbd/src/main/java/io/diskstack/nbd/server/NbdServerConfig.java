package io.diskstack.nbd.server;

import io.diskstack.core.ConfigException;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.nbd.NbdAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The {@code nbd-server} section, as qemu-storage-daemon's {@code --nbd-server}: {@code addr.*},
 * {@code tls-creds}, {@code max-connections} (0: no limit), and ours, {@code insecure}: only with
 * it may a server without TLS listen on anything but a Unix socket or a loopback address.
 */
public record NbdServerConfig(NbdAddress address, String tlsCreds, int maxConnections, boolean insecure) {
    static final String OWNER = ConfigReader.NBD_SERVER;

    /** Checks the section; every error names the key. */
    public static NbdServerConfig parse(Map<String, Object> flat, Path baseDir) {
        NodeOptions o = new NodeOptions(OWNER, flat);
        if (!o.has("addr")) {
            throw o.error("addr", "is required (addr.type=inet,addr.host=127.0.0.1,addr.port=10809 or addr.type=unix,addr.path=PATH)");
        }
        NbdAddress address = NbdAddress.read(o, "addr", baseDir);
        String tls = o.optString("tls-creds", null);
        if (o.has("tls-authz")) {
            throw o.error("tls-authz", "is not supported: use verify-peer=on on the tls-creds object");
        }
        int max = (int) o.optLong("max-connections", 0, 0, Integer.MAX_VALUE);
        boolean insecure = o.optBool("insecure", false);
        o.assertAllConsumed();
        address.checkResolves(o, "addr");
        try {
            if (tls == null && !insecure && !address.isLocal()) {
                throw new ConfigException(OWNER + ": listening on " + address + " without TLS: give tls-creds= "
                        + "(a tls-creds-x509 or tls-creds-psk object), or insecure=on to serve the disks in clear to the network");
            }
        } catch (UnknownHostException e) {
            throw new ConfigException(OWNER + ": 'addr.host' '" + address.host() + "' does not resolve");
        }
        return new NbdServerConfig(address, tls, max, insecure);
    }
}
