package io.diskstack.nbd.server;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.ConfigException;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.ExportConfig;
import io.diskstack.core.config.Stack;
import io.diskstack.nbd.Nbd;
import io.diskstack.nbd.TlsCreds;
import io.diskstack.nbd.Wire;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Starts the NBD server a mounted config asks for: its {@code nbd-server} section and its {@code nbd} exports. */
public final class NbdFrontEnd {
    private NbdFrontEnd() {}

    /** Checks the {@code nbd-server} section before anything opens (exit 2, nothing changed). */
    public static void check(io.diskstack.core.config.StackConfig config) {
        if (!config.nbdServer().isEmpty()) {
            NbdServerConfig.parse(config.nbdServer(), config.baseDir());
        }
        boolean hasNbdExports = config.exports().stream().anyMatch(e -> e.type().equals(ConfigReader.NBD_EXPORT));
        if (hasNbdExports && config.nbdServer().isEmpty()) {
            ExportConfig first = config.exports().stream().filter(e -> e.type().equals(ConfigReader.NBD_EXPORT))
                    .findFirst().orElseThrow();
            throw new ConfigException("export '" + first.id() + "': type " + ConfigReader.NBD_EXPORT
                    + " needs an nbd-server (--nbd-server addr.type=inet,addr.host=127.0.0.1,addr.port=10809)");
        }
    }

    /**
     * Checks the section and listens on its address before anything opens, so that a bad
     * section or a port in use changes nothing (exit 2); null if the config has no server.
     */
    public static java.nio.channels.ServerSocketChannel listen(io.diskstack.core.config.StackConfig config) {
        check(config);
        if (config.nbdServer().isEmpty()) {
            return null;
        }
        return NbdServer.bind(NbdServerConfig.parse(config.nbdServer(), config.baseDir()));
    }

    /** Serves the stack's nbd exports on what {@link #listen} returned; null if that was null. */
    public static NbdServer start(Stack stack, java.nio.channels.ServerSocketChannel listener) throws IOException {
        if (listener == null) {
            return null;
        }
        NbdServerConfig config = NbdServerConfig.parse(stack.config().nbdServer(), stack.config().baseDir());
        TlsCreds tls = null;
        if (config.tlsCreds() != null) {
            tls = stack.objects().get(config.tlsCreds(), TlsCreds.class, NbdServerConfig.OWNER, "tls-creds");
            if (!tls.server()) {
                throw new ConfigException(NbdServerConfig.OWNER + ": 'tls-creds' object '" + tls.id()
                        + "' is for a client: give it endpoint=server");
            }
            stack.objects().hold(config.tlsCreds(), NbdServerConfig.OWNER + " ('tls-creds')");
        }
        List<NbdExport> exports = new ArrayList<>();
        for (ExportConfig e : stack.config().exports()) {
            if (e.type().equals(ConfigReader.NBD_EXPORT)) {
                exports.add(export(e, stack.graph().backend(e.id())));
            }
        }
        NbdServer server = NbdServer.start(config, tls, List.of(), listener);
        try {
            for (NbdExport e : exports) {
                server.addExport(e);
            }
        } catch (RuntimeException e) {
            server.close();
            throw e;
        }
        server.attach(stack);
        stack.registerFrontEnd(new io.diskstack.core.config.ExportFrontEnd() {
            @Override
            public String type() {
                return ConfigReader.NBD_EXPORT;
            }

            @Override
            public void addExport(ExportConfig export, BlockBackend backend) {
                server.addExport(export(export, backend));
            }

            @Override
            public void whileClosed(java.util.Collection<String> ids, String reason,
                                    io.diskstack.core.ExportGuard.Action action) throws IOException {
                server.whileClosed(ids, reason, action);
            }

            @Override
            public void removeExport(String id) {
                for (NbdExport e : server.exports()) {
                    if (e.id().equals(id)) {
                        server.removeExport(e.name());
                    }
                }
            }
        });
        java.util.logging.Logger.getLogger(NbdFrontEnd.class.getName()).info(() -> "NBD server on " + server.address()
                + (server.tlsCreds() == null ? "" : " (TLS)") + ", exports: "
                + String.join(", ", exports.stream().map(NbdExport::name).toList()));
        return server;
    }

    private static NbdExport export(ExportConfig e, BlockBackend backend) {
        String name = (String) e.options().get("name");
        if (Wire.utf8(name).length > Nbd.MAX_STRING) {
            throw new ConfigException("export '" + e.id() + "': 'name' is longer than " + Nbd.MAX_STRING + " bytes");
        }
        return new NbdExport(e.id(), name, (String) e.options().get("description"), backend);
    }
}
