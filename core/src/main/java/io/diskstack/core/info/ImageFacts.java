package io.diskstack.core.info;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a node tells {@code diskstack info} about its image, in {@code qemu-img info}'s terms
 * (QEMU's ImageInfo and ImageInfoSpecific): a driver fills in what applies to its format in
 * {@link io.diskstack.core.BlockNode#describeImage}. The core adds what every node has (format,
 * virtual size, disk size, internal snapshots).
 */
public final class ImageFacts {
    private long clusterSize = -1;
    private boolean encrypted;
    private boolean dirty;
    private String backingFile;
    private String backingFormat;
    private String specificType;
    private Map<String, Object> specific;

    /** The format's cluster size ({@code cluster-size}). */
    public ImageFacts clusterSize(long bytes) {
        this.clusterSize = bytes;
        return this;
    }

    /** The data is encrypted ({@code encrypted: yes}). */
    public ImageFacts encrypted() {
        this.encrypted = true;
        return this;
    }

    /** The image was not closed cleanly ({@code dirty-flag}, "cleanly shut down: no"). */
    public ImageFacts dirty(boolean dirty) {
        this.dirty = dirty;
        return this;
    }

    /**
     * The backing file as the image names it, and its format if the image records one (null if
     * not); core works out the full path.
     */
    public ImageFacts backingFile(String name, String format) {
        this.backingFile = name;
        this.backingFormat = format;
        return this;
    }

    /**
     * The format's own fields ({@code format-specific}): {@code type} (the format's name) and
     * {@code data}, keyed as in QEMU's JSON ({@code lazy-refcounts}). Values are strings,
     * numbers, booleans, lists and maps of those; the human output turns {@code -} into spaces.
     */
    public ImageFacts formatSpecific(String type, Map<String, Object> data) {
        this.specificType = type;
        this.specific = new LinkedHashMap<>(data);
        return this;
    }

    long clusterSize() {
        return clusterSize;
    }

    boolean isEncrypted() {
        return encrypted;
    }

    boolean isDirty() {
        return dirty;
    }

    String backingFile() {
        return backingFile;
    }

    String backingFormat() {
        return backingFormat;
    }

    String specificType() {
        return specificType;
    }

    Map<String, Object> specific() {
        return specific;
    }
}
