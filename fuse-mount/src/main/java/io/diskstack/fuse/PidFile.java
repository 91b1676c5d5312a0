package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.logging.Logger;

/**
 * {@code --pidfile FILE} (qemu-storage-daemon's option): the process id, written atomically
 * (a temporary file renamed over it) once the mount is ready, removed on exit.
 */
final class PidFile implements MountListener {
    private static final Logger LOG = Logger.getLogger(PidFile.class.getName());
    private final Path file;
    private final String content = ProcessHandle.current().pid() + "\n";

    /** Checks the file can be used before anything is opened: its folder exists, no live process owns it. */
    PidFile(Path file) {
        this.file = file.toAbsolutePath().normalize();
        if (!Files.isDirectory(this.file.getParent())) {
            throw new ConfigException("--pidfile '" + file + "': its folder does not exist");
        }
        try {
            String old = Files.exists(this.file) ? Files.readString(this.file).strip() : "";
            if (old.matches("[0-9]{1,10}") && ProcessHandle.of(Long.parseLong(old)).map(ProcessHandle::isAlive)
                    .orElse(false) && Long.parseLong(old) != ProcessHandle.current().pid()) {
                throw new ConfigException("--pidfile '" + file + "' names process " + old + ", which is running");
            }
        } catch (IOException e) {
            throw new ConfigException("--pidfile '" + file + "' cannot be read: " + e.getMessage());
        }
    }

    @Override
    public void ready(Path mountpoint, int disks) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
        try {
            Files.writeString(tmp, content);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    @Override
    public void stopped() {
        try {
            if (Files.exists(file) && Files.readString(file).equals(content)) {
                Files.delete(file);
            }
        } catch (IOException e) {
            LOG.warning("cannot remove the pid file " + file + ": " + e.getMessage());
        }
    }
}
