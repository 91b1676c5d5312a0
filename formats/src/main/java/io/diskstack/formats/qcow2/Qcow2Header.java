package io.diskstack.formats.qcow2;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The image header and its extensions (spec: "Header", "Header extensions"), parsed and checked
 * against the file size. Parsing never trusts a field: every size and offset is bounded before
 * anything is allocated for it. Writes patch single fields in place, so extensions, unknown
 * additional fields and the backing file name stay as they are.
 */
final class Qcow2Header {
    static final int MAGIC = 0x514649fb;
    static final int V2_LENGTH = 72;
    static final int V3_MIN_LENGTH = 104;

    // field offsets
    static final int OFF_SIZE = 24;
    static final int OFF_L1_SIZE = 36;
    static final int OFF_L1_OFFSET = 40;
    static final int OFF_REFTABLE_OFFSET = 48;
    static final int OFF_REFTABLE_CLUSTERS = 56;
    static final int OFF_NB_SNAPSHOTS = 60;
    static final int OFF_SNAPSHOTS_OFFSET = 64;
    static final int OFF_INCOMPATIBLE = 72;
    static final int OFF_AUTOCLEAR = 88;

    static final long INCOMPAT_DIRTY = 1;
    static final long INCOMPAT_CORRUPT = 2;
    static final long INCOMPAT_DATA_FILE = 4;
    static final long INCOMPAT_COMPRESSION = 8;
    static final long INCOMPAT_EXTL2 = 16;
    static final long INCOMPAT_KNOWN = 31;
    static final long COMPAT_LAZY_REFCOUNTS = 1;
    static final long AUTOCLEAR_BITMAPS = 1;

    static final int EXT_END = 0;
    static final int EXT_BACKING_FORMAT = 0xe2792aca;
    static final int EXT_FEATURE_TABLE = 0x6803f857;
    static final int EXT_BITMAPS = 0x23852875;
    static final int EXT_CRYPTO = 0x0537be77;
    static final int EXT_DATA_FILE = 0x44415441;

    /** QEMU's limits, which keep a hostile header from making us allocate gigabytes. */
    static final long MAX_L1_BYTES = 32L << 20;
    static final long MAX_REFTABLE_BYTES = 8L << 20;
    static final int MAX_SNAPSHOTS = 65536;

    int version;
    long backingFileOffset;
    int backingFileSize;
    int clusterBits;
    long size;
    int cryptMethod;
    long l1Size;
    long l1TableOffset;
    long refcountTableOffset;
    long refcountTableClusters;
    long nbSnapshots;
    long snapshotsOffset;
    long incompatible;
    long compatible;
    long autoclear;
    int refcountOrder = 4;
    int headerLength = V2_LENGTH;
    int compressionType;
    String backingFile;
    String backingFormat;
    /** Extensions in file order, unknown ones included: type → data. */
    final List<Extension> extensions = new ArrayList<>();
    final Map<String, String> featureNames = new LinkedHashMap<>();

    record Extension(int type, byte[] data) {}

    Layout layout() {
        return new Layout(clusterBits, (incompatible & INCOMPAT_EXTL2) != 0, refcountOrder);
    }

    boolean hasExtension(int type) {
        return extensions.stream().anyMatch(e -> e.type() == type);
    }

    /** Parses the fixed part from the first bytes of the file; {@link #parseRest} finishes. */
    static Qcow2Header parseFixed(ByteBuffer b, long fileSize) {
        if (fileSize < V2_LENGTH || b.limit() < V2_LENGTH) {
            throw new Qcow2Exception("is too short to be a qcow2 image (" + fileSize + " bytes)");
        }
        Qcow2Header h = new Qcow2Header();
        if (b.getInt(0) != MAGIC) {
            throw new Qcow2Exception("is not a qcow2 image (bad magic)");
        }
        h.version = b.getInt(4);
        if (h.version != 2 && h.version != 3) {
            throw new Qcow2Exception("has unsupported qcow2 version " + Integer.toUnsignedString(h.version)
                    + " (2 and 3 are supported)");
        }
        h.backingFileOffset = b.getLong(8);
        h.backingFileSize = b.getInt(16);
        h.clusterBits = b.getInt(20);
        if (h.clusterBits < 9 || h.clusterBits > 21) {
            throw new Qcow2Exception("has cluster_bits " + Integer.toUnsignedString(h.clusterBits)
                    + " (the cluster size must be 512 B to 2 MiB)");
        }
        h.size = b.getLong(24);
        h.cryptMethod = b.getInt(32);
        h.l1Size = Integer.toUnsignedLong(b.getInt(36));
        h.l1TableOffset = b.getLong(40);
        h.refcountTableOffset = b.getLong(48);
        h.refcountTableClusters = Integer.toUnsignedLong(b.getInt(56));
        h.nbSnapshots = Integer.toUnsignedLong(b.getInt(60));
        h.snapshotsOffset = b.getLong(64);
        if (h.version == 3) {
            if (b.limit() < V3_MIN_LENGTH || fileSize < V3_MIN_LENGTH) {
                throw new Qcow2Exception("is too short for a version 3 header");
            }
            h.incompatible = b.getLong(72);
            h.compatible = b.getLong(80);
            h.autoclear = b.getLong(88);
            h.refcountOrder = b.getInt(96);
            h.headerLength = b.getInt(100);
            if (h.headerLength < V3_MIN_LENGTH || h.headerLength % 8 != 0
                    || h.headerLength > (1 << h.clusterBits)) {
                throw new Qcow2Exception("has an invalid header_length " + Integer.toUnsignedString(h.headerLength));
            }
            if (h.refcountOrder < 0 || h.refcountOrder > 6) {
                throw new Qcow2Exception("has an invalid refcount_order " + Integer.toUnsignedString(h.refcountOrder)
                        + " (at most 6)");
            }
        }
        return h;
    }

    /** Parses what follows the fixed header in the first cluster and checks every field. */
    void parseRest(ByteBuffer cluster, long fileSize) {
        int cs = 1 << clusterBits;
        if (headerLength > 104 && cluster.limit() > 104) {
            compressionType = cluster.get(104) & 0xff;
        }
        // extensions
        int pos = headerLength;
        long extEnd = backingFileOffset > 0 && backingFileOffset < cs ? backingFileOffset : cs;
        while (pos + 8 <= extEnd && pos + 8 <= cluster.limit()) {
            int type = cluster.getInt(pos);
            long len = Integer.toUnsignedLong(cluster.getInt(pos + 4));
            if (type == EXT_END) {
                break;
            }
            if (pos + 8 + len > extEnd || pos + 8 + len > cluster.limit()) {
                throw new Qcow2Exception("has a header extension 0x" + Integer.toHexString(type) + " of " + len
                        + " bytes that runs past the header cluster");
            }
            byte[] data = new byte[(int) len];
            cluster.get(pos + 8, data);
            extensions.add(new Extension(type, data));
            pos += 8 + (int) ((len + 7) & ~7L);
        }
        for (Extension e : extensions) {
            if (e.type() == EXT_BACKING_FORMAT) {
                backingFormat = new String(e.data(), StandardCharsets.UTF_8);
            } else if (e.type() == EXT_FEATURE_TABLE) {
                for (int i = 0; i + 48 <= e.data().length; i += 48) {
                    int kind = e.data()[i] & 0xff;
                    int bit = e.data()[i + 1] & 0xff;
                    int n = 0;
                    while (n < 46 && e.data()[i + 2 + n] != 0) {
                        n++;
                    }
                    featureNames.put(kind + ":" + bit, new String(e.data(), i + 2, n, StandardCharsets.UTF_8));
                }
            }
        }
        // backing file name
        if (backingFileOffset != 0) {
            if (backingFileSize > 1023 || backingFileSize < 0) {
                throw new Qcow2Exception("has a backing file name of " + Integer.toUnsignedString(backingFileSize)
                        + " bytes (at most 1023)");
            }
            if (backingFileOffset < 0 || backingFileOffset + backingFileSize > cs
                    || backingFileOffset + backingFileSize > cluster.limit()) {
                throw new Qcow2Exception("has its backing file name outside the header cluster");
            }
            byte[] name = new byte[backingFileSize];
            cluster.get((int) backingFileOffset, name);
            backingFile = new String(name, StandardCharsets.UTF_8);
        }
        validate(fileSize);
    }

    private void validate(long fileSize) {
        int cs = 1 << clusterBits;
        long unknown = incompatible & ~INCOMPAT_KNOWN;
        if (unknown != 0) {
            List<String> names = new ArrayList<>();
            for (int bit = 0; bit < 64; bit++) {
                if ((unknown & (1L << bit)) != 0) {
                    String n = featureNames.get("0:" + bit);
                    names.add(n == null ? "bit " + bit : "'" + n + "' (bit " + bit + ")");
                }
            }
            throw new Qcow2Exception("uses unknown incompatible features " + String.join(", ", names)
                    + "; it cannot be opened");
        }
        if ((incompatible & INCOMPAT_DATA_FILE) != 0) {
            throw new Qcow2Exception("uses an external data file, which diskstack does not support");
        }
        if (cryptMethod != 0) {
            throw new Qcow2Exception("is encrypted (crypt_method " + Integer.toUnsignedString(cryptMethod)
                    + "); put a luks node above a plain qcow2 instead");
        }
        if ((incompatible & INCOMPAT_EXTL2) != 0 && clusterBits < 14) {
            throw new Qcow2Exception("uses extended L2 entries with clusters below 16 KiB");
        }
        if ((incompatible & INCOMPAT_COMPRESSION) != 0) {
            if (headerLength <= 104) {
                throw new Qcow2Exception("sets the compression type bit but has no compression_type field");
            }
            if (compressionType != 1) {
                throw new Qcow2Exception("uses unknown compression type " + compressionType);
            }
        } else if (compressionType != 0) {
            throw new Qcow2Exception("has compression_type " + compressionType + " without its feature bit");
        }
        if (size < 0) {
            throw new Qcow2Exception("has a negative virtual size");
        }
        Layout layout = layout();
        long neededL1 = layout.l1EntriesFor(size);
        if (neededL1 * 8 > MAX_L1_BYTES) {
            throw new Qcow2Exception("has a virtual size of " + size + " bytes, too large for its cluster size");
        }
        if (l1Size * 8 > MAX_L1_BYTES) {
            throw new Qcow2Exception("has an L1 table of " + l1Size + " entries (at most " + MAX_L1_BYTES / 8 + ")");
        }
        if (l1Size < neededL1) {
            throw new Qcow2Exception("has an L1 table of " + l1Size + " entries, too small for its virtual size ("
                    + neededL1 + " needed)");
        }
        checkTable("L1 table", l1TableOffset, l1Size * 8, fileSize, l1Size > 0);
        if (refcountTableClusters == 0) {
            throw new Qcow2Exception("has an empty refcount table");
        }
        if (refcountTableClusters * cs > MAX_REFTABLE_BYTES) {
            throw new Qcow2Exception("has a refcount table of " + refcountTableClusters + " clusters (at most "
                    + MAX_REFTABLE_BYTES / cs + ")");
        }
        checkTable("refcount table", refcountTableOffset, refcountTableClusters * cs, fileSize, true);
        if (nbSnapshots > MAX_SNAPSHOTS) {
            throw new Qcow2Exception("claims " + nbSnapshots + " snapshots (at most " + MAX_SNAPSHOTS + ")");
        }
        if (nbSnapshots > 0) {
            checkTable("snapshot table", snapshotsOffset, 40, fileSize, true);
        }
    }

    private void checkTable(String what, long offset, long bytes, long fileSize, boolean present) {
        if (!present) {
            return;
        }
        int cs = 1 << clusterBits;
        if (offset <= 0 || offset % cs != 0) {
            throw new Qcow2Exception("has its " + what + " at offset " + offset
                    + (offset == 0 ? ", which overlaps the header" : ", which is not cluster-aligned"));
        }
        if (offset + bytes > fileSize || offset + bytes < 0) {
            throw new Qcow2Exception("has its " + what + " at offset " + offset + " (" + bytes
                    + " bytes), past the end of the file (" + fileSize + " bytes)");
        }
    }

    boolean isDirty() {
        return (incompatible & INCOMPAT_DIRTY) != 0;
    }

    boolean isCorrupt() {
        return (incompatible & INCOMPAT_CORRUPT) != 0;
    }

    boolean lazyRefcounts() {
        return (compatible & COMPAT_LAZY_REFCOUNTS) != 0;
    }

    /**
     * Rewrites the header cluster {@code cluster} (the image's first cluster, its position and
     * limit the whole cluster) to name {@code file} in {@code format} as the backing file, or none
     * when {@code file} is null: the extensions are laid out again without the old backing format
     * (the new one first, as qemu-img does), then the end marker and the name. Updates this header's
     * fields to match.
     *
     * @return the bytes of the cluster to write from offset 0: everything that changed
     */
    ByteBuffer withBacking(ByteBuffer cluster, String file, String format) {
        int cs = 1 << clusterBits;
        List<Extension> kept = new ArrayList<>();
        if (file != null && format != null) {
            kept.add(new Extension(EXT_BACKING_FORMAT, format.getBytes(StandardCharsets.UTF_8)));
        }
        for (Extension e : extensions) {
            if (e.type() != EXT_BACKING_FORMAT) {
                kept.add(e);
            }
        }
        int oldEnd = backingFileOffset > 0 ? (int) (backingFileOffset + backingFileSize) : headerLength;
        ByteBuffer b = cluster.duplicate().clear();
        int pos = headerLength;
        for (Extension e : kept) {
            int padded = (e.data().length + 7) & ~7;
            if (pos + 8 + padded + 8 > cs) {
                throw new Qcow2Exception("has no room in its header cluster for the backing file name");
            }
            b.putInt(pos, e.type()).putInt(pos + 4, e.data().length);
            b.put(pos + 8, e.data());
            for (int i = e.data().length; i < padded; i++) {
                b.put(pos + 8 + i, (byte) 0);
            }
            pos += 8 + padded;
        }
        b.putLong(pos, 0); // end of extensions
        pos += 8;
        byte[] name = file == null ? new byte[0] : file.getBytes(StandardCharsets.UTF_8);
        if (name.length > 1023 || pos + name.length > cs) {
            throw new Qcow2Exception("has no room in its header cluster for backing file name '" + file + "'");
        }
        b.put(pos, name);
        int end = pos + name.length;
        for (int i = end; i < Math.max(end, oldEnd) && i < cs; i++) {
            b.put(i, (byte) 0);
        }
        backingFileOffset = file == null ? 0 : pos;
        backingFileSize = name.length;
        b.putLong(8, backingFileOffset).putInt(16, backingFileSize);
        backingFile = file;
        backingFormat = file == null ? null : format;
        extensions.clear();
        extensions.addAll(kept);
        return b.position(0).limit(Math.max(end, oldEnd));
    }
}
