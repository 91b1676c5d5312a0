package io.diskstack.formats.file;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code file} protocol: {@code filename}, {@code cache.direct} (O_DIRECT where the file
 * system allows it), {@code locking} (QEMU's image locking: auto, on, off) and
 * {@code aio=threads}, as in QEMU.
 */
public final class FileDriver implements BlockDriver {
    @Override
    public String name() {
        return "file";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.PROTOCOL;
    }

    @Override
    public Map<String, Object> hostFileOptions(String filename) {
        Map<String, Object> options = new LinkedHashMap<>();
        options.put("driver", name());
        options.put("filename", filename);
        return options;
    }

    @Override
    public java.util.Set<String> reopenableOptions() {
        return java.util.Set.of("cache.direct");
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        Path path = ctx.resolvePath(o.requireString("filename"));
        boolean direct = o.optBool("cache.direct", false);
        ImageLock.Locking locking = o.optEnum("locking", ImageLock.Locking.class, ImageLock.Locking.AUTO);
        String aio = o.optString("aio", "threads");
        if (!aio.equals("threads")) {
            throw o.error("aio", "value '" + aio + "' is not supported (diskstack always uses threads)");
        }
        if (Files.isDirectory(path)) {
            throw o.error("filename", "'" + path + "' is a directory, not an image file");
        }
        List<OpenOption> opts = new ArrayList<>(List.of(StandardOpenOption.READ));
        if (!ctx.readOnly()) {
            opts.add(StandardOpenOption.WRITE);
        }
        if (direct) {
            opts.add(com.sun.nio.file.ExtendedOpenOption.DIRECT);
        }
        FileChannel channel;
        try {
            channel = FileChannel.open(path, opts.toArray(new OpenOption[0]));
        } catch (NoSuchFileException e) {
            throw o.error("filename", "'" + path + "' does not exist");
        } catch (AccessDeniedException e) {
            throw o.error("filename", "'" + path + "' cannot be opened " + (ctx.readOnly() ? "for reading" : "for writing")
                    + ": permission denied");
        } catch (IOException | UnsupportedOperationException e) {
            if (direct) {
                throw o.error("cache.direct", "is not supported for '" + path + "' by its file system ("
                        + e.getMessage() + ")");
            }
            throw o.error("filename", "'" + path + "' cannot be opened: " + e.getMessage());
        }
        try {
            int alignment = direct ? directAlignment(path, o) : 1;
            NativeFile nativeFile = NativeFile.open(path, !ctx.readOnly());
            try {
                ImageLock.acquire(nativeFile, path, !ctx.readOnly(), locking, o);
            } catch (IOException | RuntimeException e) {
                nativeFile.close();
                throw e;
            }
            return new FileNode(ctx, path, channel, nativeFile, direct, alignment);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** The alignment the JDK enforces for O_DIRECT: the file system's block size. */
    private static int directAlignment(Path path, NodeOptions o) throws IOException {
        long block = Files.getFileStore(path).getBlockSize();
        if (block > 64 * 1024 || Long.bitCount(block) != 1) {
            throw o.error("cache.direct", "is not supported for '" + path + "': its file system's block size ("
                    + block + " bytes) is too large for direct I/O");
        }
        return (int) Math.max(512, block);
    }

    /** How {@link #preallocate} fills a range: QEMU's preallocation modes for files. */
    public enum Preallocation {
        /** Reserve the blocks (fallocate): they read as zeroes, without being written. */
        FALLOC,
        /** Write zeroes: the blocks are allocated and written, on every file system. */
        FULL
    }

    /** Bytes preallocated per step: a progress report after each. */
    private static final int PREALLOCATION_STEP = 8 << 20;

    /**
     * Allocates {@code [offset, offset+length)} of a file (growing it to at least the end), as
     * QEMU's {@code preallocation=falloc|full}: {@code FALLOC} where the file system can reserve
     * blocks, else (and for {@code FULL}) by writing zeroes; flushed. Reports each step.
     */
    public static void preallocate(Path path, long offset, long length, Preallocation mode, io.diskstack.core.Progress progress)
            throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE);
             NativeFile nf = NativeFile.open(path, true)) {
            java.nio.ByteBuffer zeroes = null;
            boolean falloc = mode == Preallocation.FALLOC;
            for (long done = 0; done < length; ) {
                int n = (int) Math.min(PREALLOCATION_STEP, length - done);
                if (falloc) {
                    int err = nf.fallocate(0, offset + done, n);
                    if (err == NativeFile.EOPNOTSUPP) {
                        falloc = false; // glibc's posix_fallocate falls back the same way
                    } else if (err != 0) {
                        throw new IOException(path + ": fallocate: " + NativeFile.describe(err));
                    }
                }
                if (!falloc) {
                    if (zeroes == null) {
                        zeroes = java.nio.ByteBuffer.allocateDirect(PREALLOCATION_STEP);
                    }
                    java.nio.ByteBuffer b = zeroes.clear().limit(n);
                    long at = offset + done;
                    while (b.hasRemaining()) {
                        at += ch.write(b, at);
                    }
                }
                done += n;
                progress.update(done, length);
            }
            ch.force(true);
        }
    }

    /** Makes a file at least {@code size} bytes long, the new part a hole (no blocks allocated). */
    public static void growSparse(Path path, long size) throws IOException {
        if (Files.size(path) < size) {
            try (NativeFile nf = NativeFile.open(path, true)) {
                nf.ftruncate(size);
            }
        }
    }

    /**
     * Creates a sparse file of {@code size} bytes for the image formats' {@code create}.
     *
     * @throws ConfigException if the file exists or its folder does not
     */
    public static void createSparseFile(Path path, long size) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            if (size > 0) {
                try (NativeFile nf = NativeFile.open(path, true)) {
                    nf.ftruncate(size);
                }
            }
            ch.force(true);
        } catch (FileAlreadyExistsException e) {
            throw new ConfigException("'" + path + "' already exists; remove it first (nothing was changed)");
        } catch (NoSuchFileException e) {
            throw new ConfigException("'" + path + "' cannot be created: its folder does not exist");
        } catch (AccessDeniedException e) {
            throw new ConfigException("'" + path + "' cannot be created: permission denied");
        }
    }
}
