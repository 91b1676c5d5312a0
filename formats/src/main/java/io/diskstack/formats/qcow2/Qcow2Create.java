package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.formats.file.FileDriver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code diskstack create -f qcow2 -o …}: QEMU's option names and QEMU's layout (header,
 * refcount table, refcount block, L1 table), so {@code qemu-img info} shows the same as for
 * {@code qemu-img create}.
 */
final class Qcow2Create {
    private static final String[][] FEATURES = {
        {"0", "0", "dirty bit"}, {"0", "1", "corrupt bit"}, {"0", "2", "external data file"},
        {"0", "3", "compression type"}, {"0", "4", "extended L2 entries"}, {"1", "0", "lazy refcounts"},
        {"2", "0", "bitmaps"}, {"2", "1", "raw external data"},
    };

    private Qcow2Create() {}

    static void create(ImageCreateContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        String where = "create '" + ctx.file() + "' (qcow2)";
        long clusterSize = o.optSize("cluster_size", 65536);
        String backingFile = o.optString("backing_file", null);
        String backingFmt = o.optString("backing_fmt", null);
        boolean extL2 = o.optBool("extended_l2", false);
        long refcountBits = o.optLong("refcount_bits", 16, 1, 64);
        boolean lazy = o.optBool("lazy_refcounts", false);
        String compat = o.optString("compat", "1.1");
        String compression = o.optString("compression_type", "zlib");
        String prealloc = o.optString("preallocation", "off");
        int version;
        switch (compat) {
            case "1.1", "v3" -> version = 3;
            case "0.10", "v2" -> version = 2;
            default -> throw o.error("compat", "value '" + compat + "' is not one of 0.10, 1.1");
        }
        if (!List.of("off", "metadata", "falloc", "full").contains(prealloc)) {
            throw o.error("preallocation", "value '" + prealloc + "' is not one of off, metadata, falloc, full");
        }
        if (Long.bitCount(clusterSize) != 1 || clusterSize < 512 || clusterSize > (2 << 20)) {
            throw o.error("cluster_size", "value " + clusterSize + " must be a power of two from 512 to 2M");
        }
        if (Long.bitCount(refcountBits) != 1) {
            throw o.error("refcount_bits", "value " + refcountBits + " must be a power of two up to 64");
        }
        if (!compression.equals("zlib") && !compression.equals("zstd")) {
            throw o.error("compression_type", "value '" + compression + "' is not one of zlib, zstd");
        }
        if (version == 2) {
            if (refcountBits != 16) {
                throw o.error("refcount_bits", "must be 16 with compat=0.10");
            }
            if (lazy) {
                throw o.error("lazy_refcounts", "needs compat=1.1");
            }
            if (extL2) {
                throw o.error("extended_l2", "needs compat=1.1");
            }
            if (compression.equals("zstd")) {
                throw o.error("compression_type", "zstd needs compat=1.1");
            }
        }
        if (extL2 && clusterSize < 16384) {
            throw o.error("extended_l2", "needs cluster_size of at least 16K");
        }
        if (backingFmt != null && backingFile == null) {
            throw o.error("backing_fmt", "is given without backing_file");
        }
        long size = ctx.size();
        if (backingFile != null) {
            if (backingFile.length() > 1023) {
                throw o.error("backing_file", "is longer than 1023 bytes");
            }
            Path dir = ctx.file().toAbsolutePath().getParent();
            // a protocol URL (an nbd export) is not a file to look at: the caller gives format and size
            boolean url = backingFile.matches("[a-z][a-z0-9+.-]*://.*");
            if (url && (backingFmt == null || size < 0)) {
                throw o.error("backing_file", "'" + backingFile + "' is a URL: give backing_fmt and a size");
            }
            Path target = url ? null : dir.resolve(backingFile).normalize();
            if (!url && !Files.exists(target)) {
                throw o.error("backing_file", "'" + backingFile + "' does not exist (looked for '" + target + "')");
            }
            if (backingFmt == null) {
                backingFmt = BackingFiles.probe(target);
            }
            if (size < 0) {
                size = backingSize(ctx, target, backingFmt, where);
            }
        }
        if (size < 0) {
            throw new ConfigException(where + ": a size is required (or a backing_file to take it from)");
        }
        if (size % 512 != 0) {
            throw new ConfigException(where + ": the size " + size + " is not a multiple of 512");
        }
        int clusterBits = Long.numberOfTrailingZeros(clusterSize);
        Layout layout = new Layout(clusterBits, extL2, Long.numberOfTrailingZeros(refcountBits));
        long l1Entries = layout.l1EntriesFor(size);
        if (l1Entries * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw new ConfigException(where + ": the size " + size + " is too large for cluster_size " + clusterSize);
        }
        if (!prealloc.equals("off") && backingFile != null) {
            throw o.error("preallocation", "does not go with backing_file (a preallocated image never reads its backing)");
        }
        // header, refcount table, refcount blocks, L1 table, and when preallocating every L2 table
        // and data cluster after them: find the smallest consistent layout
        long l1Clusters = layout.clustersFor(l1Entries * 8);
        long dataClusters = prealloc.equals("off") ? 0 : layout.clustersFor(size);
        long l2Tables = prealloc.equals("off") ? 0 : l1Entries;
        long tableClusters = 1;
        long blocks = 1;
        while (true) {
            long total = 1 + tableClusters + blocks + l1Clusters + l2Tables + dataClusters;
            long needBlocks = (total + layout.refblockEntries - 1) / layout.refblockEntries;
            long needTable = Math.max(1, layout.clustersFor(needBlocks * 8));
            if (needBlocks == blocks && needTable == tableClusters) {
                break;
            }
            blocks = needBlocks;
            tableClusters = needTable;
        }
        long cs = clusterSize;
        long tableOffset = cs;
        long blocksOffset = (1 + tableClusters) * cs;
        long l1Offset = (1 + tableClusters + blocks) * cs;
        long l2Offset = l1Offset + l1Clusters * cs;
        long dataOffset = l2Offset + l2Tables * cs;
        long used = 1 + tableClusters + blocks + l1Clusters + l2Tables + dataClusters;

        ByteBuffer h = ByteBuffer.allocate((int) cs);
        h.putInt(0, Qcow2Header.MAGIC);
        h.putInt(4, version);
        h.putInt(20, clusterBits);
        h.putLong(24, size);
        h.putInt(36, (int) l1Entries);
        h.putLong(40, l1Offset);
        h.putLong(48, tableOffset);
        h.putInt(56, (int) tableClusters);
        int pos;
        if (version == 3) {
            long incompat = (extL2 ? Qcow2Header.INCOMPAT_EXTL2 : 0)
                    | (compression.equals("zstd") ? Qcow2Header.INCOMPAT_COMPRESSION : 0);
            h.putLong(72, incompat);
            h.putLong(80, lazy ? Qcow2Header.COMPAT_LAZY_REFCOUNTS : 0);
            h.putInt(96, layout.refcountOrder);
            h.putInt(100, 112);
            h.put(104, (byte) (compression.equals("zstd") ? 1 : 0));
            pos = 112;
        } else {
            pos = 72;
        }
        if (backingFmt != null) {
            pos = putExtension(h, pos, Qcow2Header.EXT_BACKING_FORMAT, backingFmt.getBytes(StandardCharsets.UTF_8));
        }
        if (version == 3) {
            byte[] table = new byte[FEATURES.length * 48];
            for (int i = 0; i < FEATURES.length; i++) {
                table[i * 48] = (byte) Integer.parseInt(FEATURES[i][0]);
                table[i * 48 + 1] = (byte) Integer.parseInt(FEATURES[i][1]);
                byte[] name = FEATURES[i][2].getBytes(StandardCharsets.US_ASCII);
                System.arraycopy(name, 0, table, i * 48 + 2, name.length);
            }
            pos = putExtension(h, pos, Qcow2Header.EXT_FEATURE_TABLE, table);
        }
        pos += 8; // end of extensions
        if (backingFile != null) {
            byte[] name = backingFile.getBytes(StandardCharsets.UTF_8);
            if (pos + name.length > cs) {
                throw o.error("backing_file", "does not fit in the header cluster");
            }
            h.putLong(8, pos);
            h.putInt(16, name.length);
            h.put(pos, name);
        }

        Refcounts rc = new Refcounts(layout, null, null, null, null, new long[0], 0, 0, 0);
        ByteBuffer table = ByteBuffer.allocate((int) (tableClusters * cs));
        for (int b = 0; b < blocks; b++) {
            table.putLong(b * 8, blocksOffset + b * cs);
        }
        FileDriver.createSparseFile(ctx.file(), 0);
        boolean ok = false;
        try (FileChannel ch = FileChannel.open(ctx.file(), StandardOpenOption.WRITE)) {
            writeFully(ch, h.clear(), 0);
            writeFully(ch, table.clear(), tableOffset);
            ByteBuffer cluster = ByteBuffer.allocate((int) cs);
            for (long b = 0; b < blocks; b++) {
                cluster.clear().put(new byte[(int) cs]).clear();
                long first = b * layout.refblockEntries;
                for (long c = first; c < Math.min(used, first + layout.refblockEntries); c++) {
                    rc.write(cluster, (int) (c - first), 1);
                }
                writeFully(ch, cluster.clear(), blocksOffset + b * cs);
            }
            ByteBuffer l1 = ByteBuffer.allocate((int) (l1Entries * 8));
            for (int i = 0; i < l2Tables; i++) {
                l1.putLong(i * 8, (l2Offset + i * cs) | Layout.COPIED);
            }
            if (l1Entries > 0) {
                writeFully(ch, l1.clear(), l1Offset);
            } else {
                ch.truncate(l1Offset);
            }
            for (long t = 0; t < l2Tables; t++) {
                cluster.clear().put(new byte[(int) cs]).clear();
                for (int k = 0; k < layout.l2Entries; k++) {
                    long guest = t * layout.l2Entries + k;
                    if (guest >= dataClusters) {
                        break;
                    }
                    cluster.putLong(k * layout.l2EntrySize, (dataOffset + guest * cs) | Layout.COPIED);
                    if (layout.extendedL2) {
                        cluster.putLong(k * layout.l2EntrySize + 8, 0xffff_ffffL); // every subcluster allocated
                    }
                }
                writeFully(ch, cluster.clear(), l2Offset + t * cs);
            }
            long dataBytes = dataClusters * cs;
            switch (prealloc) {
                case "metadata" -> FileDriver.growSparse(ctx.file(), dataOffset + dataBytes);
                case "falloc", "full" -> {
                    ch.force(true);
                    FileDriver.preallocate(ctx.file(), dataOffset, dataBytes, prealloc.equals("full")
                            ? FileDriver.Preallocation.FULL : FileDriver.Preallocation.FALLOC, ctx.progress());
                }
                default -> { }
            }
            ch.force(true);
            ok = true;
        } finally {
            if (!ok) {
                Files.deleteIfExists(ctx.file());
            }
        }
    }

    private static int putExtension(ByteBuffer h, int pos, int type, byte[] data) {
        h.putInt(pos, type);
        h.putInt(pos + 4, data.length);
        h.put(pos + 8, data);
        return pos + 8 + ((data.length + 7) & ~7);
    }

    private static void writeFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        long pos = at;
        while (b.hasRemaining()) {
            pos += ch.write(b, pos);
        }
    }

    private static long backingSize(ImageCreateContext ctx, Path target, String fmt, String where) throws IOException {
        if (!fmt.equals("qcow2") && !fmt.equals("raw")) {
            throw new ConfigException(where + ": backing format '" + fmt + "' is not supported");
        }
        Map<String, Object> opts = new LinkedHashMap<>();
        opts.put("driver", fmt);
        opts.put("node-name", "backing");
        opts.put("read-only", true);
        opts.put("file.driver", "file");
        opts.put("file.filename", target.toString());
        try (BlockGraph g = new BlockGraph(ctx.drivers(), ctx.objects(), target.getParent())) {
            BlockNode n = g.open(opts);
            return n.size();
        }
    }

    static List<String> optionNames() {
        return List.of("size", "cluster_size", "backing_file", "backing_fmt", "extended_l2", "refcount_bits",
                "lazy_refcounts", "compat", "compression_type", "preallocation");
    }
}
