package io.diskstack.core.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A whole mount's configuration, from a JSON file or qemu-storage-daemon style arguments:
 * objects, block devices (flat QEMU options), exports, and images to create if missing.
 *
 * @param source  the config file, or null if it came from the command line
 * @param baseDir relative file names resolve against this
 * @param externalSnapshots the external snapshots taken so far, as the config recorded them
 * @param nbdServer the {@code nbd-server} section as flat options (QEMU's {@code --nbd-server}),
 *                  or empty if there is none; its front end checks it
 */
public record StackConfig(Path source, Path baseDir, List<Map<String, Object>> objects,
                          List<Map<String, Object>> blockdevs, List<ExportConfig> exports,
                          List<ImageSpec> images, List<ExternalSnapshotRecord> externalSnapshots,
                          Map<String, Object> nbdServer) {
    public StackConfig(Path source, Path baseDir, List<Map<String, Object>> objects,
                       List<Map<String, Object>> blockdevs, List<ExportConfig> exports,
                       List<ImageSpec> images, List<ExternalSnapshotRecord> externalSnapshots) {
        this(source, baseDir, objects, blockdevs, exports, images, externalSnapshots, Map.of());
    }

    public StackConfig {
        nbdServer = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(nbdServer));
        externalSnapshots = List.copyOf(externalSnapshots);
        objects = List.copyOf(objects);
        blockdevs = List.copyOf(blockdevs);
        exports = List.copyOf(exports);
        images = List.copyOf(images);
    }
}
