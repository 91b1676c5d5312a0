package io.diskstack.core.config;

import java.util.Map;

/**
 * One {@code --export}: the export {@code id} shows node {@code nodeName}, as a file in the mount
 * ({@code type} {@code fuse}, the default) or through another front end ({@code nbd}), which reads
 * its own options from {@code options} (checked by {@link ConfigReader} already). A file's
 * {@code owner} and {@code group} (names or numbers, null for the mounting user's) and
 * {@code mode} (permission bits, -1 for the default: 0600, 0400 read-only).
 */
public record ExportConfig(String id, String nodeName, boolean writable, String type, Map<String, Object> options,
        String owner, String group, int mode) {
    public static final String FUSE = "fuse";

    public ExportConfig {
        options = Map.copyOf(options);
    }

    /** A FUSE export owned by the mounting user, with the default mode. */
    public ExportConfig(String id, String nodeName, boolean writable) {
        this(id, nodeName, writable, FUSE, Map.of(), null, null, -1);
    }

    /** An export of another type, with its own options. */
    public ExportConfig(String id, String nodeName, boolean writable, String type, Map<String, Object> options) {
        this(id, nodeName, writable, type, options, null, null, -1);
    }

    public boolean isFuse() {
        return type.equals(FUSE);
    }

    /** The export as the config file writes it (the defaults left out). */
    public Map<String, Object> toConfig() {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        if (!isFuse()) {
            m.put("type", type);
        }
        m.put("id", id);
        m.put("node-name", nodeName);
        m.put("writable", writable);
        m.putAll(new java.util.TreeMap<>(options));
        if (owner != null) {
            m.put("owner", owner);
        }
        if (group != null) {
            m.put("group", group);
        }
        if (mode >= 0) {
            m.put("mode", String.format("%04o", mode));
        }
        return m;
    }
}
