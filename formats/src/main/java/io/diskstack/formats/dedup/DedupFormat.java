package io.diskstack.formats.dedup;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.Sizes;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Creates a dedup device ({@code diskstack create -f dedup}): each child is a file to create,
 * sparse and of the size the format needs (as {@code qemu-img create}), or nested options of an
 * existing node to format (a luks volume under {@code data}: {@code data.driver=luks,...}), which
 * QEMU's blockdev-create does with node references.
 */
final class DedupFormat {
    private DedupFormat() {}

    static void create(ImageCreateContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        if (ctx.file() != null) {
            throw new ConfigException(o.owner() + ": dedup names its files in -o metadata=FILE,data=FILE");
        }
        Object metaRef = o.takeChild("metadata");
        Object dataRef = o.takeChild("data");
        long blockSize = o.optSize("block-size", Geometry.MIN_BLOCK);
        if (blockSize < Geometry.MIN_BLOCK || blockSize > Geometry.MAX_BLOCK || Long.bitCount(blockSize) != 1) {
            throw o.error("block-size", "value " + blockSize + " is not a power of two from 4K to 64K");
        }
        String hash = o.optString("hash", "sha256");
        if (!hash.equals("sha256")) {
            throw o.error("hash", "value '" + hash + "' is not one of sha256");
        }
        // before any file is made: the caller deletes none of them if a leftover option fails later
        o.assertAllConsumed();
        if (metaRef == null) {
            throw o.error("metadata", "is required");
        }
        if (dataRef == null) {
            throw o.error("data", "is required");
        }
        if (ctx.size() <= 0) {
            throw new ConfigException(o.owner() + ": a size is required");
        }
        long size = (ctx.size() + 511) / 512 * 512;
        Path cwd = Path.of("").toAbsolutePath();
        for (Object ref : new Object[] {metaRef, dataRef}) {
            if (ref instanceof String f && Files.exists(cwd.resolve(f))) {
                throw new ConfigException(o.owner() + ": '" + f + "' already exists; remove it first (nothing was changed)");
            }
        }
        List<Path> made = new ArrayList<>();
        try (BlockGraph graph = new BlockGraph(ctx.drivers(), ctx.objects(), cwd)) {
            long logical = Geometry.ceilDiv(size, blockSize);
            BlockBackend data;
            long dataBlocks;
            if (dataRef instanceof String f) {
                dataBlocks = Math.min(Geometry.MAX_DATA_BLOCKS, logical + slack(logical));
                data = open(graph, fileOptions(newFile(cwd.resolve(f), (dataBlocks + 1) * blockSize, made)), "data");
            } else {
                data = open(graph, nested(dataRef), "data");
                dataBlocks = Math.min(Geometry.MAX_DATA_BLOCKS, data.size() / blockSize - 1);
                if (dataBlocks < 1) {
                    throw o.error("data", "has only " + data.size() + " bytes: a dedup data child needs at least two "
                            + "blocks of " + blockSize);
                }
            }
            Geometry g = Geometry.forCreate(size, (int) blockSize, dataBlocks);
            BlockBackend meta;
            if (metaRef instanceof String f) {
                meta = open(graph, fileOptions(newFile(cwd.resolve(f), g.metadataBytes(), made)), "metadata");
            } else {
                meta = open(graph, nested(metaRef), "metadata");
                if (meta.size() < g.metadataBytes()) {
                    throw o.error("metadata", "is too small for a " + Sizes.format(size) + " disk over " + dataBlocks
                            + " data blocks: it needs " + g.metadataBytes() + " bytes, it has " + meta.size());
                }
                meta.writeZeroes(0, g.metadataBytes(), 0);
            }
            byte[] uuid = uuid();
            data.write(0, ByteBuffer.wrap(DataHeader.encode(uuid, (int) blockSize, dataBlocks)), 0);
            Superblock sb = new Superblock(uuid, 0, 1, Superblock.HASH_SHA256, g);
            meta.write(sb.page() * Geometry.PAGE, ByteBuffer.wrap(sb.encode()), 0);
            data.flush();
            meta.flush();
        } catch (IOException | RuntimeException | Error e) {
            for (Path p : made) {
                Files.deleteIfExists(p);
            }
            throw e;
        }
    }

    /**
     * Blocks a created data child has beyond the disk's: a write never overwrites a block in place,
     * so a disk full of distinct blocks needs free ones for new content before the overwrite frees
     * the old ones (which become reusable at the next commit).
     */
    static long slack(long logicalBlocks) {
        return Math.max(1024, logicalBlocks / 64);
    }

    private static byte[] uuid() {
        UUID u = UUID.randomUUID();
        return ByteBuffer.allocate(16).putLong(u.getMostSignificantBits()).putLong(u.getLeastSignificantBits()).array();
    }

    private static Path newFile(Path file, long size, List<Path> made) throws IOException {
        try {
            Files.createFile(file);
        } catch (FileAlreadyExistsException e) {
            throw new ConfigException("create: '" + file + "' already exists; remove it first (nothing was changed)");
        }
        made.add(file);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(size);
        }
        return file;
    }

    static Map<String, Object> fileOptions(Path file) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("driver", "file");
        m.put("filename", file.toString());
        return m;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> nested(Object ref) {
        if (!(ref instanceof Map)) {
            throw new ConfigException("create: a child is a file name or nested options, not '" + ref + "'");
        }
        return new LinkedHashMap<>((Map<String, Object>) ref);
    }

    private static BlockBackend open(BlockGraph graph, Map<String, Object> options, String role) throws IOException {
        String name = "create-" + role;
        options.put("node-name", name);
        graph.open(options);
        return graph.addBackend(name, name, true);
    }
}
