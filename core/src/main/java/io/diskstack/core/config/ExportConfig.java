package io.diskstack.core.config;

/** One {@code --export}: the file {@code id} in the mount shows node {@code nodeName}. */
public record ExportConfig(String id, String nodeName, boolean writable) {
}
