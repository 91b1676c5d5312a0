package io.diskstack.core.config;

import java.util.List;

/**
 * An external snapshot as the config records it, so that commands can name it after a remount:
 * {@code {"name": "s1", "export": "disk0", "overlays": ["img0-s1", "img1-s1"]}}. The overlays are
 * the nodes the snapshot put in place; each one's backing is the image the snapshot froze.
 */
public record ExternalSnapshotRecord(String name, String export, List<String> overlays) {
    public ExternalSnapshotRecord {
        overlays = List.copyOf(overlays);
    }
}
