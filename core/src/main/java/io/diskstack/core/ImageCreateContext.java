package io.diskstack.core;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import java.nio.file.Path;

/**
 * What {@link BlockDriver#create} gets: the file to create, the size, the {@code -o} options
 * (consume them; the core rejects leftovers), and the objects (secrets) the options may name.
 *
 * @param file    the image file; the caller has checked it does not exist. Null for a driver that
 *                names its files in the options ({@link BlockDriver#namesFilesInOptions()})
 * @param size    virtual size in bytes, or -1 if not given (a format may take it from a backing file)
 * @param options the {@code -o} options
 * @param objects secrets and other objects given with {@code --object}
 * @param drivers the drivers, to open a backing file for its size
 * @param progress where a long create (preallocation) reports how far it is
 */
public record ImageCreateContext(Path file, long size, NodeOptions options, ObjectRegistry objects,
                                 DriverRegistry drivers, Progress progress) {
    /** Without progress reports. */
    public ImageCreateContext(Path file, long size, NodeOptions options, ObjectRegistry objects, DriverRegistry drivers) {
        this(file, size, options, objects, drivers, Progress.NONE);
    }
}
