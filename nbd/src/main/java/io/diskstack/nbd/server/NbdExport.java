package io.diskstack.nbd.server;

import io.diskstack.core.BlockBackend;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * One export of the server: the name clients ask for, the backend it serves, and counters for
 * {@code MNT/.control/nbd-server}. Request counters are the backend's own.
 */
public final class NbdExport {
    private final String id;
    private final String name;
    private final String description;
    private final BlockBackend backend;
    final AtomicInteger connections = new AtomicInteger();
    final LongAdder totalConnections = new LongAdder();

    public NbdExport(String id, String name, String description, BlockBackend backend) {
        this.id = id;
        this.name = name;
        this.description = description;
        this.backend = backend;
    }

    /** The export id ({@code --export id=}). */
    public String id() {
        return id;
    }

    /** The name clients give in NBD_OPT_GO. */
    public String name() {
        return name;
    }

    /** The description NBD_OPT_LIST and NBD_INFO_DESCRIPTION show, or null. */
    public String description() {
        return description;
    }

    public BlockBackend backend() {
        return backend;
    }

    /** Clients connected to it now. */
    public int connections() {
        return connections.get();
    }
}
