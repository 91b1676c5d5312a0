package io.diskstack.core.config;

/**
 * One {@code --export}: the file {@code id} in the mount shows node {@code nodeName}; the file's
 * {@code owner} and {@code group} (names or numbers, null for the mounting user's) and
 * {@code mode} (permission bits, -1 for the default: 0600, 0400 read-only).
 */
public record ExportConfig(String id, String nodeName, boolean writable, String owner, String group, int mode) {
    /** An export owned by the mounting user, with the default mode. */
    public ExportConfig(String id, String nodeName, boolean writable) {
        this(id, nodeName, writable, null, null, -1);
    }
}
