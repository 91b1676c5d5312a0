package io.diskstack.core.config;

import java.util.Map;

/**
 * One {@code --export}: the export {@code id} shows node {@code nodeName}, as a file in the mount
 * ({@code type} {@code fuse}, the default) or through another front end ({@code nbd}), which reads
 * its own options from {@code options} (checked by {@link ConfigReader} already).
 */
public record ExportConfig(String id, String nodeName, boolean writable, String type, Map<String, Object> options) {
    public static final String FUSE = "fuse";

    public ExportConfig {
        options = Map.copyOf(options);
    }

    /** A FUSE export. */
    public ExportConfig(String id, String nodeName, boolean writable) {
        this(id, nodeName, writable, FUSE, Map.of());
    }

    public boolean isFuse() {
        return type.equals(FUSE);
    }
}
