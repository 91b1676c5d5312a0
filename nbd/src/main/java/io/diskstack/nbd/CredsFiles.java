package io.diskstack.nbd;

import io.diskstack.core.ConfigException;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Reads a credentials file; a failure is one line naming the object and the file, never its content. */
final class CredsFiles {
    private CredsFiles() {
    }

    static byte[] read(String owner, Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(owner + ": '" + file + "' is missing");
        } catch (AccessDeniedException e) {
            throw new ConfigException(owner + ": '" + file + "' cannot be read (permission denied)");
        } catch (IOException e) {
            throw new ConfigException(owner + ": '" + file + "' cannot be read (" + e.getClass().getSimpleName() + ")");
        }
    }
}
