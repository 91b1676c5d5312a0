package io.diskstack.core.config;

import java.util.Map;

/**
 * An image the config creates when it is missing (the {@code create} section), the way
 * {@code diskstack create -f FORMAT -o OPTIONS FILE SIZE} would.
 *
 * @param filename relative to the config file's folder
 * @param size     bytes, or -1 to let the format decide (a qcow2 overlay takes its backing's size)
 * @param options  the format's {@code -o} options, flat
 */
public record ImageSpec(String filename, String format, long size, Map<String, Object> options) {
}
