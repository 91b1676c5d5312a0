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

    /**
     * Checks an image ({@code diskstack check -f NAME}) and repairs what the context asks.
     * Drivers that cannot check images keep this default.
     *
     * @throws ConfigException if the image cannot be opened (the check could not complete)
     */
    default ImageCheckContext.Report check(ImageCheckContext ctx) throws IOException {
        throw new ConfigException("driver '" + name() + "' cannot check images");
    }

    /**
     * True for a driver whose {@code create} and {@code check} name their files in the
     * {@code -o} options (dedup's {@code metadata=} and {@code data=}), so the command line gives
     * no FILE: {@code diskstack create -f dedup -o metadata=m.img,data=d.img 10G}.
     */
    default boolean namesFilesInOptions() {
        return false;
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

    /**
     * For a protocol over host files: the options that open {@code filename}; null if it opens
     * none. A job that makes a new image (a mirror's or a backup's target) asks for it.
     */
    default java.util.Map<String, Object> hostFileOptions(String filename) {
        return null;
    }

    /**
     * The options that open an image of this driver over the child that {@code file} (nested
     * options) opens: QEMU's convention, {@code {"driver": NAME, "file": FILE}}.
     */
    default java.util.Map<String, Object> imageOptions(java.util.Map<String, Object> file) {
        java.util.Map<String, Object> options = new java.util.LinkedHashMap<>();
        options.put("driver", name());
        options.put("file", file);
        return options;
    }

    /**
     * How sure the driver is that an image starting with {@code head} (its first bytes, fewer
     * for a short file) is in its format: 0 not at all, 100 certain (a magic number); a format
     * that takes anything, such as raw, says 1. {@code diskstack info} without {@code -f} uses
     * the best (QEMU's probing). Protocols and filters keep 0.
     */
    default int probe(byte[] head) {
        return 0;
    }

    /**
     * True for a driver whose images are encrypted under a {@code key-secret} (luks): a backup
     * with {@code encrypt=SECRET} creates one, and opens it with that option added.
     */
    default boolean encrypts() {
        return false;
    }

    /**
     * Options of this driver that {@code blockdev-reopen} may change while a node runs (a throttle
     * node's {@code throttle-group}, a qcow2 node's cache sizes), besides the generic read-only,
     * detect-zeroes, discard and cache.no-flush. The node is opened again with them.
     */
    default java.util.Set<String> reopenableOptions() {
        return java.util.Set.of();
    }
}
