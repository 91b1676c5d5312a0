package io.diskstack.nbd.client;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;

/**
 * The {@code nbd} protocol, with QEMU's options: {@code server.type=inet,server.host=H,server.port=P}
 * or {@code server.type=unix,server.path=PATH}, {@code export}, {@code tls-creds},
 * {@code tls-hostname}, {@code reconnect-delay} and {@code open-timeout} (seconds).
 */
public final class NbdDriver implements BlockDriver {
    @Override
    public String name() {
        return "nbd";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.PROTOCOL;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        return NbdClientNode.open(ctx, NbdClientOptions.read(ctx));
    }
}
