package io.diskstack.nbd.client;

import io.diskstack.core.ConfigException;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.nbd.Nbd;
import io.diskstack.nbd.NbdAddress;
import io.diskstack.nbd.TlsCreds;
import io.diskstack.nbd.Wire;
import io.diskstack.nbd.X509TlsCreds;

/** An nbd node's options, read and checked through the node's consuming reader. */
record NbdClientOptions(NbdAddress address, String export, TlsCreds tls, String tlsHostname, long reconnectDelayNanos,
                        long openTimeoutNanos) {
    static NbdClientOptions read(NodeOpenContext ctx) {
        NodeOptions o = ctx.options();
        if (!o.has("server")) {
            throw o.error("server", "is required (server.type=inet,server.host=H,server.port=P or "
                    + "server.type=unix,server.path=PATH)");
        }
        NbdAddress address = NbdAddress.read(o, "server", ctx.resolvePath("."));
        String export = o.optString("export", "");
        if (Wire.utf8(export).length > Nbd.MAX_STRING) {
            throw o.error("export", "is longer than " + Nbd.MAX_STRING + " bytes");
        }
        TlsCreds tls = o.has("tls-creds") ? ctx.object("tls-creds", TlsCreds.class) : null;
        if (tls != null && tls.server()) {
            throw o.error("tls-creds", "refers to object '" + tls.id() + "', made for a server: give it endpoint=client");
        }
        String hostname = o.optString("tls-hostname", tls != null && !address.unix() ? address.host() : null);
        if (hostname == null && tls instanceof X509TlsCreds) {
            // as QEMU: a Unix socket has no host name to check the server's certificate against
            throw o.error("tls-hostname", "is required with tls-creds-x509 over a Unix socket: give the name "
                    + "the server's certificate carries (tls-hostname=NAME)");
        }
        double delay = o.optDouble("reconnect-delay", 0, 0);
        double timeout = o.optDouble("open-timeout", 0, 0);
        if (o.has("x-dirty-bitmap")) {
            throw o.error("x-dirty-bitmap", "is not supported");
        }
        o.assertAllConsumed();
        address.checkResolves(o, "server");
        if (delay > 3600 || timeout > 3600) {
            throw new ConfigException(o.owner() + ": '" + (delay > 3600 ? "reconnect-delay" : "open-timeout")
                    + "' is above 3600 seconds");
        }
        return new NbdClientOptions(address, export, tls, hostname, (long) (delay * 1e9), (long) (timeout * 1e9));
    }
}
