package io.diskstack.core.config;

import io.diskstack.core.BlockBackend;

/**
 * A front end other than the mount's files that serves exports of one {@link #type()} (the NBD
 * server serves {@code nbd}). It registers with the {@link Stack} it serves, so that
 * {@code block-export-add} and {@code block-export-del} reach it without core knowing it by name.
 */
public interface ExportFrontEnd {
    /** The export type it serves: the config's {@code "type"}. */
    String type();

    /**
     * Starts serving {@code export} (its own options checked by {@link ConfigReader} already).
     *
     * @throws io.diskstack.core.ConfigException if it cannot (a name taken), before serving anything
     */
    void addExport(ExportConfig export, BlockBackend backend);

    /** Stops serving the export with this id; nothing if it serves none. */
    void removeExport(String id);

    /**
     * Runs the action while none of its clients has any of these exports open, holding new ones
     * back until it is done (see {@link io.diskstack.core.ExportGuard}).
     *
     * @throws io.diskstack.core.BlockIOException (EBUSY) naming an export a client has open
     */
    default void whileClosed(java.util.Collection<String> ids, String reason, io.diskstack.core.ExportGuard.Action action)
            throws java.io.IOException {
        action.run();
    }
}
