package io.diskstack.fuse;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The built-in example: examples/default.json copied, on first use, into a state folder, where
 * its image is created too. The state folder holds the config because snapshots rewrite it.
 */
final class DefaultExample {
    private DefaultExample() {}

    /** The config file to mount, copied from the bundled example if it is not there yet. */
    static Path prepare() throws IOException {
        Path dir = stateDir().resolve("default");
        Path config = dir.resolve("config.json");
        if (!Files.exists(config)) {
            Files.createDirectories(dir);
            try (InputStream in = DefaultExample.class.getResourceAsStream("/examples/default.json")) {
                if (in == null) {
                    throw new IOException("the default example is missing from the diskstack jar");
                }
                Files.copy(in, config);
            }
        }
        return config;
    }

    static Path stateDir() {
        String explicit = System.getenv("DISKSTACK_STATE_DIR");
        if (explicit != null && !explicit.isEmpty()) {
            return Path.of(explicit);
        }
        String xdg = System.getenv("XDG_STATE_HOME");
        Path base = xdg != null && !xdg.isEmpty() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".local", "state");
        return base.resolve("diskstack");
    }
}
