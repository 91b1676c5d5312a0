package io.diskstack.nbd.server;

import io.diskstack.core.control.ControlContext;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlTreeProvider;
import java.util.Map;
import java.util.Set;

/** {@code MNT/.control/nbd-server}: the server's address, connections and per-export counters. */
public final class NbdServerFile implements ControlTreeProvider {
    static final String NAME = "nbd-server";

    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        if (context.stack().config().nbdServer().isEmpty()) {
            return Map.of();
        }
        return Map.of(NAME, ControlFile.readOnly(() -> {
            NbdServer server = NbdServer.of(context.stack());
            return server == null ? "not running\n" : server.render();
        }));
    }

    @Override
    public Set<String> reservedNames() {
        return Set.of(NAME);
    }
}
