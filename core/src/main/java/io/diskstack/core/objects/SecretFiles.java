package io.diskstack.core.objects;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Arrays;

/**
 * Reads a file that holds a secret or a key. Only a regular file of at most {@link #MAX_BYTES}
 * (cryptsetup's key file limit): a FIFO would block its reader forever, /dev/zero would never end.
 */
public final class SecretFiles {
    public static final int MAX_BYTES = 8 << 20;

    private SecretFiles() {
    }

    /** The file's bytes; the exception's message is the problem, to follow the file's name. */
    public static byte[] read(Path file) throws IOException {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException e) {
            throw new IOException("cannot be read: " + e.getClass().getSimpleName());
        }
        if (!a.isRegularFile()) {
            throw new IOException("is not a regular file");
        }
        if (a.size() > MAX_BYTES) {
            throw new IOException("is larger than " + (MAX_BYTES >> 20) + " MiB");
        }
        byte[] bytes;
        try (InputStream in = Files.newInputStream(file)) {
            bytes = in.readNBytes(MAX_BYTES + 1);
        } catch (IOException e) {
            throw new IOException("cannot be read: " + e.getClass().getSimpleName());
        }
        if (bytes.length > MAX_BYTES) {
            Arrays.fill(bytes, (byte) 0);
            throw new IOException("is larger than " + (MAX_BYTES >> 20) + " MiB");
        }
        return bytes;
    }
}
