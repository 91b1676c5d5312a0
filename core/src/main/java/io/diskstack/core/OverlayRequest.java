package io.diskstack.core;

import io.diskstack.core.objects.ObjectRegistry;
import java.nio.file.Path;

/**
 * What a format that makes overlays gets to create one ({@link BlockDriver#createOverlay}): a new
 * image file over a backing image, and the names its nodes take in the graph and the config.
 *
 * @param file            the overlay's image file; the caller checked it does not exist
 * @param fileInConfig    how the config names that file (relative to the config's folder if below it)
 * @param backingFile     the backing file the overlay's header records (relative to the overlay's
 *                        folder when beside it, as qemu-img does)
 * @param backingFormat   the backing file's format
 * @param size            the overlay's virtual size: the backing node's size
 * @param nodeName        the overlay node's node-name
 * @param fileNodeName    the node-name for the overlay's file node
 * @param backingNodeName the node the overlay's {@code backing} option names
 * @param skipsDiskSync   give the file node {@code cache.no-flush}, as the base has it
 */
public record OverlayRequest(Path file, String fileInConfig, String backingFile, String backingFormat, long size,
                             String nodeName, String fileNodeName, String backingNodeName, boolean skipsDiskSync,
                             ObjectRegistry objects, DriverRegistry drivers) {}
