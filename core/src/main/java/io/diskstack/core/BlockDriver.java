package io.diskstack.core;

import java.io.IOException;

/**
 * The code for one kind of node (QEMU's BlockDriver): stateless, found through
 * {@link java.util.ServiceLoader} so the core knows no driver. Register an implementation in
 * {@code META-INF/services/io.diskstack.core.BlockDriver}.
 */
public interface BlockDriver {
    /** The {@code driver} option value: {@code file}, {@code raw}, {@code qcow2}, … */
    String name();

    DriverKind kind();

    /**
     * Opens a node. The driver reads its options from {@link NodeOpenContext#options()} (the core
     * rejects whatever it leaves unread) and its children through the context.
     *
     * @throws ConfigException for bad options or unusable images, naming node and key
     * @throws IOException     for I/O failures while opening
     */
    BlockNode open(NodeOpenContext ctx) throws IOException;

    /**
     * Creates an image file ({@code diskstack create -f NAME}). Drivers that cannot create images
     * keep this default.
     */
    default void create(ImageCreateContext ctx) throws IOException {
        throw new ConfigException("driver '" + name() + "' cannot create images");
    }

    /** True for a format whose images can sit over any other image as an external snapshot's overlay (qcow2). */
    default boolean makesOverlays() {
        return false;
    }

    /**
     * Creates an overlay image over a backing image and returns the options that open it: a
     * node named {@link OverlayRequest#nodeName()} over a file node named
     * {@link OverlayRequest#fileNodeName()} (nested, with its node-name), backed by node
     * {@link OverlayRequest#backingNodeName()}. Only drivers that {@link #makesOverlays()}.
     */
    default java.util.Map<String, Object> createOverlay(OverlayRequest request) throws IOException {
        throw new ConfigException("driver '" + name() + "' cannot make overlays");
    }
}
