package io.diskstack.core.job;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverKind;
import io.diskstack.core.Errno;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.buffer.Zeroes;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.OptionTree;
import io.diskstack.core.snapshot.ExternalSnapshots;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A new image a job writes (a mirror's or a backup's target): created in the format the command
 * names, optionally encrypted, and opened in the graph as a node named by the job. Which drivers
 * make it is asked of the drivers themselves (the one that opens host files, the format, the one
 * that {@linkplain BlockDriver#encrypts() encrypts}); core names none.
 *
 * <p>The job writes it with the host's page cache bypassed ({@code cache.direct}) where the file's
 * driver can reopen out of that and the file system takes it: a disk's worth of copied data then
 * costs no copy into the cache (most of a buffered copy's CPU time) and evicts nothing the host
 * cached, and the flush before a pivot has only metadata left to write. A pivot first reopens the
 * file with the cache its config records.
 */
final class TargetImage {
    private static final Logger LOG = Logger.getLogger(TargetImage.class.getName());
    /** QEMU's cache option every protocol driver may take: O_DIRECT, the host's page cache bypassed. */
    private static final String CACHE_DIRECT = "cache.direct";

    private final BlockGraph graph;
    final Path path;
    final BlockNode top;
    /** The options that open it, its nested children named: what a pivot records in the config. */
    final Map<String, Object> options;

    /** The file node while it bypasses the page cache for the job's copy; null once (or if never) so. */
    private String directFile;

    private TargetImage(BlockGraph graph, Path path, BlockNode top, Map<String, Object> options, String directFile) {
        this.graph = graph;
        this.path = path;
        this.top = top;
        this.options = options;
        this.directFile = directFile;
    }

    /** Refuses a target path that exists, is a folder, or has no folder to go in, before anything is made. */
    static void checkPath(String job, Path path) throws BlockIOException {
        if (Files.isDirectory(path)) {
            throw new BlockIOException(Errno.EISDIR, "job '" + job + "': 'target' " + path + " is a folder");
        }
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            throw new BlockIOException(Errno.EEXIST, "job '" + job + "': 'target' " + path + " exists already");
        }
        if (path.getParent() == null || !Files.isDirectory(path.getParent())) {
            throw new BlockIOException(Errno.ENOENT, "job '" + job + "': 'target' " + path + ": no folder "
                    + path.getParent());
        }
    }

    /** The format driver the command names, if it is one that makes images. */
    static BlockDriver format(BlockGraph graph, String job, String format) throws BlockIOException {
        if (!graph.drivers().has(format) || graph.drivers().get(format, job).kind() != DriverKind.FORMAT) {
            throw new BlockIOException(Errno.EINVAL, "job '" + job + "': 'format' '" + format
                    + "' is not an image format (" + String.join(", ", formats(graph)) + ")");
        }
        return graph.drivers().get(format, job);
    }

    private static List<String> formats(BlockGraph graph) {
        List<String> out = new ArrayList<>();
        for (String n : graph.drivers().names()) {
            if (graph.drivers().get(n, "").kind() == DriverKind.FORMAT) {
                out.add(n);
            }
        }
        return out;
    }

    /**
     * Creates the image and opens it read-write as node {@code nodeName} (its file node
     * {@code nodeName-file}). With {@code encryptSecret}, the file is an encrypted volume under that
     * secret and the format sits inside it. On failure nothing is left: nodes closed, file deleted.
     */
    static TargetImage create(BlockGraph graph, String job, Path path, BlockDriver format, String encryptSecret,
                              long size, String nodeName) throws IOException {
        checkPath(job, path);
        BlockDriver protocol = null;
        for (String n : graph.drivers().names()) {
            if (graph.drivers().get(n, "").hostFileOptions(path.toString()) != null) {
                protocol = graph.drivers().get(n, "");
                break;
            }
        }
        if (protocol == null) {
            throw new BlockIOException(Errno.EINVAL, "job '" + job + "': no driver opens host files");
        }
        String inConfig = ExternalSnapshots.configName(graph.baseDir(), path);
        String fileNode = nodeName + "-file";
        Map<String, Object> file = named(protocol.hostFileOptions(inConfig), fileNode);
        List<Path> made = new ArrayList<>();
        BlockNode opened = null;
        try {
            Map<String, Object> options;
            if (encryptSecret == null) {
                made.add(path);
                createImage(graph, format, path, size, Map.of());
                options = named(format.imageOptions(file), nodeName);
            } else {
                options = createEncrypted(graph, job, format, path, size, encryptSecret, file, nodeName, made);
            }
            if (protocol.reopenableOptions().contains(CACHE_DIRECT)) {
                try {
                    opened = graph.open(OptionTree.flatten(withOption(options, fileNode, CACHE_DIRECT, true)));
                    return new TargetImage(graph, path, opened, options, fileNode);
                } catch (IOException | RuntimeException e) {
                    LOG.info(() -> "job '" + job + "': target " + path + " written through the page cache: "
                            + e.getMessage());
                }
            }
            opened = graph.open(OptionTree.flatten(options));
            return new TargetImage(graph, path, opened, options, null);
        } catch (IOException | RuntimeException e) {
            if (opened != null) {
                remove(graph, opened);
            }
            for (Path p : made) {
                Files.deleteIfExists(p);
            }
            throw e;
        }
    }

    /**
     * The encrypted volume, with the format's fresh image copied into its payload: the format is
     * made in a temporary file first (its few metadata clusters), then written through the
     * encrypting node, whose payload grows with its file.
     */
    private static Map<String, Object> createEncrypted(BlockGraph graph, String job, BlockDriver format, Path path,
                                                       long size, String secret, Map<String, Object> file,
                                                       String nodeName, List<Path> made) throws IOException {
        BlockDriver crypt = null;
        for (String n : graph.drivers().names()) {
            if (graph.drivers().get(n, "").encrypts()) {
                crypt = graph.drivers().get(n, "");
                break;
            }
        }
        if (crypt == null) {
            throw new BlockIOException(Errno.EINVAL, "job '" + job + "': 'encrypt': no driver encrypts images");
        }
        graph.objects().get(secret, io.diskstack.core.objects.Secret.class, "job '" + job + "'", "encrypt");
        Path plain = path.resolveSibling("." + path.getFileName() + ".new");
        Files.deleteIfExists(plain);
        made.add(plain);
        createImage(graph, format, plain, size, Map.of());
        long payload = (Files.size(plain) + 4095) & ~4095L;
        made.add(path);
        createImage(graph, crypt, path, payload, Map.of("key-secret", secret));
        Map<String, Object> cryptOptions = named(crypt.imageOptions(file), nodeName + "-crypt");
        cryptOptions.put("key-secret", secret);
        BlockNode volume = graph.open(OptionTree.flatten(cryptOptions));
        try (BlockGraph.Hold hold = graph.hold(volume, io.diskstack.core.Permissions.soleWriter(true),
                "job '" + job + "'"); FileChannel in = FileChannel.open(plain, StandardOpenOption.READ);
             PooledBuffer pooled = BufferPool.acquire(Copier.CHUNK)) {
            ByteBuffer buf = pooled.buffer();
            for (long pos = 0; pos < payload; pos += Copier.CHUNK) {
                buf.clear().limit((int) Math.min(Copier.CHUNK, payload - pos));
                while (buf.hasRemaining() && in.read(buf, pos + buf.position()) > 0) {
                    // read what the file has; past its end stays as it was (zeroed below)
                }
                while (buf.hasRemaining()) {
                    buf.put((byte) 0);
                }
                buf.flip();
                if (!Zeroes.isAllZero(buf)) {
                    hold.edge().write(pos, buf);
                }
            }
            hold.edge().flush();
        } finally {
            remove(graph, volume);
            Files.deleteIfExists(plain);
            made.remove(plain);
        }
        return named(format.imageOptions(cryptOptions), nodeName);
    }

    private static void createImage(BlockGraph graph, BlockDriver driver, Path file, long size,
                                    Map<String, Object> createOptions) throws IOException {
        NodeOptions options = new NodeOptions("create '" + file + "' (" + driver.name() + ")",
                new LinkedHashMap<>(createOptions));
        try {
            driver.create(new ImageCreateContext(file, size, options, graph.objects(), graph.drivers()));
        } catch (ConfigException e) {
            throw new BlockIOException(Errno.EINVAL, e.getMessage(), e);
        }
        options.assertAllConsumed();
    }

    /** A copy of an option tree in which node {@code nodeName}'s options also set {@code key}. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> withOption(Map<String, Object> tree, String nodeName, String key, Object value) {
        Map<String, Object> out = new LinkedHashMap<>();
        tree.forEach((k, v) -> out.put(k, v instanceof Map<?, ?> m ? withOption((Map<String, Object>) m, nodeName, key,
                value) : v));
        if (nodeName.equals(tree.get("node-name"))) {
            out.put(key, value);
        }
        return out;
    }

    /**
     * Gives the target the cache its config records, as a pivot keeps it: its file leaves direct
     * I/O (in place, {@link BlockGraph#reopen}). Call it drained, with the copy done. If that
     * reopen fails, the file stays as it was, direct, until the next mount (the config records
     * it without): a finished copy is not thrown away for it. Throws only if the file could not
     * even be opened again as it was.
     */
    void useRecordedCache() throws IOException {
        if (directFile == null) {
            return;
        }
        String name = directFile;
        directFile = null;
        try {
            graph.reopen(graph.node(name), Collections.singletonMap(CACHE_DIRECT, null));
        } catch (IOException | RuntimeException e) {
            if (graph.node(name) == null) {
                throw e;
            }
            LOG.warning(() -> "node '" + name + "' (" + path + ") keeps direct I/O until the next mount: "
                    + e.getMessage());
        }
    }

    /** The options with {@code node-name} second, after {@code driver}, as configs usually read. */
    private static Map<String, Object> named(Map<String, Object> options, String nodeName) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("driver", options.get("driver"));
        out.put("node-name", nodeName);
        options.forEach((k, v) -> {
            if (!k.equals("node-name")) {
                out.putIfAbsent(k, v);
            }
        });
        return out;
    }

    private static void remove(BlockGraph graph, BlockNode node) {
        try {
            graph.removeWithOrphans(node);
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "cannot close node '" + node.nodeName() + "': " + e.getMessage());
        }
    }

    /** Closes the target's nodes and deletes its file: the job did not finish. */
    void discard() {
        remove(graph, top);
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            LOG.log(Level.WARNING, "cannot delete '" + path + "': " + e.getMessage());
        }
    }

    /** Closes the target's nodes and keeps the file: a finished backup. */
    void close() {
        remove(graph, top);
    }
}
