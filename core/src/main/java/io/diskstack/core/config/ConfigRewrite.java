package io.diskstack.core.config;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;

/**
 * Replaces a config file (or any small file) atomically: a temp file in the same folder, fsync,
 * rename, and a sync of the folder. {@link ConfigEdit} makes the content.
 */
public final class ConfigRewrite {
    private ConfigRewrite() {}

    /**
     * Replaces {@code file} by {@code content} atomically: a temp file in the same folder with
     * the same permissions, written and synced, renamed over it, and the folder synced.
     */
    public static void writeAtomically(Path file, byte[] content) throws IOException {
        stage(file, content).commit();
    }

    /**
     * The first half of {@link #writeAtomically}: the new content in a synced temp file beside
     * {@code file}, which {@link Staged#commit()} renames over it. So the slow part can run
     * before a caller stops the world, and only the rename while it is stopped.
     */
    public static Staged stage(Path file, byte[] content) throws IOException {
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Path tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
        try {
            PosixFileAttributeView view = Files.getFileAttributeView(target, PosixFileAttributeView.class);
            if (view != null && Files.exists(target)) {
                Files.setPosixFilePermissions(tmp, view.readAttributes().permissions());
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer b = ByteBuffer.wrap(content);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                ch.force(true);
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        return new Staged(target, tmp);
    }

    /** New content waiting beside its file; commit or discard it, once. */
    public static final class Staged {
        private final Path target;
        private final Path tmp;

        private Staged(Path target, Path tmp) {
            this.target = target;
            this.tmp = tmp;
        }

        /** Renames the new content over the file, then syncs the folder. */
        public void commit() throws IOException {
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException | RuntimeException e) {
                discard();
                throw e;
            }
            syncFolder(target.getParent());
        }

        /** Deletes the temp file; the file stays as it was. */
        public void discard() {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // a leftover hidden temp file is harmless
            }
        }
    }

    /** Makes the folder's entries (a new file, a rename) durable, where the file system can. */
    public static void syncFolder(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException e) {
            // some file systems cannot sync a folder; the entries are written either way
        }
    }
}
