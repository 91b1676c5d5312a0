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
            // QEMU's bounds only: the spec asks for a multiple of 8, but QEMU opens any length in range
            if (Integer.compareUnsigned(h.headerLength, V3_MIN_LENGTH) < 0
                    || Integer.compareUnsigned(h.headerLength, 1 << h.clusterBits) > 0) {
                throw new Qcow2Exception("has an invalid header_length " + Integer.toUnsignedString(h.headerLength)
                        + " (104 to the cluster size)");
            }
            if (h.refcountOrder < 0 || h.refcountOrder > 6) {
                throw new Qcow2Exception("has an invalid refcount_order " + Integer.toUnsignedString(h.refcountOrder)
                        + " (at most 6)");
            }
        }
        return h;
    }

    /**
     * Parses what follows the fixed header in the first cluster (given whole, zeroes past the end
     * of the file) and checks every field, with QEMU's rules: the same images open here as in
     * {@code qemu-img info}, except for what diskstack does not support. {@code checkMode}:
     * opened for a check, which reports an empty refcount table instead of refusing it.
     */
    void parseRest(ByteBuffer cluster, long fileSize, boolean checkMode) {
        int cs = 1 << clusterBits;
        if (Long.compareUnsigned(backingFileOffset, cs) > 0) {
            throw new Qcow2Exception("has an invalid backing_file_offset " + Long.toUnsignedString(backingFileOffset)
                    + " (past the header cluster)");
        }
        if (headerLength > 104) {
            compressionType = cluster.get(104) & 0xff;
        }
        parseExtensions(cluster, backingFileOffset != 0 ? backingFileOffset : cs);
        if (backingFileOffset != 0) {
            long len = Integer.toUnsignedLong(backingFileSize);
            if (len > Math.min(1023, cs - backingFileOffset)) {
                throw new Qcow2Exception("has a backing file name of " + len + " bytes at offset " + backingFileOffset
                        + " (at most 1023, inside the header cluster)");
            }
            byte[] name = new byte[(int) len];
            cluster.get((int) backingFileOffset, name);
            backingFile = cString(name);
        }
        validate(fileSize, checkMode);
    }

    /** QEMU reads names as C strings: the first NUL ends them. */
    private static String cString(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    /** The header extensions from header_length up to {@code end} (the backing file name, or the cluster's end). */
    private void parseExtensions(ByteBuffer cluster, long end) {
        long off = headerLength;
        while (off < end) {
            if (off + 8 > end) {
                throw new Qcow2Exception("has a header extension at offset " + off + " that runs past the end of the "
                        + "extension area (" + end + ")");
            }
            int type = cluster.getInt((int) off);
            long len = Integer.toUnsignedLong(cluster.getInt((int) off + 4));
            off += 8;
            if (len > end - off) {
                throw new Qcow2Exception("has a header extension 0x" + Integer.toHexString(type) + " of " + len
                        + " bytes that runs past the end of the extension area (" + end + ")");
            }
            if (type == EXT_END) {
                break;
            }
            byte[] data = new byte[(int) len];
            cluster.get((int) off, data);
            checkExtension(type, data);
            extensions.add(new Extension(type, data));
            off += (len + 7) & ~7L;
        }
        for (Extension e : extensions) {
            if (e.type() == EXT_BACKING_FORMAT) {
                backingFormat = cString(e.data());
            } else if (e.type() == EXT_FEATURE_TABLE) {
                for (int i = 0; i + 48 <= e.data().length; i += 48) {
                    int kind = e.data()[i] & 0xff;
                    int bit = e.data()[i + 1] & 0xff;
                    featureNames.put(kind + ":" + bit, cString(java.util.Arrays.copyOfRange(e.data(), i + 2, i + 48)));
                }
            }
        }
    }

    /** QEMU's checks of the extensions it knows. */
    private void checkExtension(int type, byte[] data) {
        if (type == EXT_BACKING_FORMAT && data.length >= 16) {
            throw new Qcow2Exception("has a backing format name of " + data.length + " bytes (at most 15)");
        }
        if (type == EXT_CRYPTO && cryptMethod != 2) {
            throw new Qcow2Exception("has an encryption header extension but no LUKS encryption");
        }
        if (type == EXT_BITMAPS) {
            if (data.length != 24) {
                throw new Qcow2Exception("has a bitmaps extension of " + data.length + " bytes (24 expected)");
            }
            if ((autoclear & AUTOCLEAR_BITMAPS) == 0) {
                return; // written by a program without bitmap support: the bitmaps are ignored
            }
            ByteBuffer x = ByteBuffer.wrap(data);
            long nb = Integer.toUnsignedLong(x.getInt(0));
            if (x.getInt(4) != 0 || nb == 0 || nb > 65535 || x.getLong(16) % (1 << clusterBits) != 0
                    || Long.compareUnsigned(x.getLong(8), 64L << 20) > 0) {
                throw new Qcow2Exception("has an invalid bitmaps extension (" + nb + " bitmaps, a directory of "
                        + Long.toUnsignedString(x.getLong(8)) + " bytes at offset "
                        + Long.toUnsignedString(x.getLong(16)) + ")");
            }
        }
    }

    private void validate(long fileSize, boolean checkMode) {
        int cs = 1 << clusterBits;
        long unknown = incompatible & ~INCOMPAT_KNOWN;
        if (unknown != 0) {
            List<String> names = new ArrayList<>();
            for (int bit = 0; bit < 64; bit++) {
                if ((unknown & (1L << bit)) != 0) {
                    String n = featureNames.get("0:" + bit);
                    names.add(n == null ? "bit " + bit : "'" + printable(n) + "' (bit " + bit + ")");
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
            throw new Qcow2Exception("has a virtual size of " + Long.toUnsignedString(size) + " bytes, which is too large");
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
        checkOffset("L1 table", l1TableOffset, l1Size * 8);
        checkTable("L1 table", l1TableOffset, l1Size * 8, fileSize, l1Size > 0);
        if (refcountTableClusters == 0 && !checkMode) {
            throw new Qcow2Exception("has an empty refcount table");
        }
        if (refcountTableClusters * cs > MAX_REFTABLE_BYTES) {
            throw new Qcow2Exception("has a refcount table of " + refcountTableClusters + " clusters (at most "
                    + MAX_REFTABLE_BYTES / cs + ")");
        }
        checkOffset("refcount table", refcountTableOffset, refcountTableClusters * cs);
        checkTable("refcount table", refcountTableOffset, refcountTableClusters * cs, fileSize,
                refcountTableClusters > 0);
        if (nbSnapshots > MAX_SNAPSHOTS) {
            throw new Qcow2Exception("claims " + nbSnapshots + " snapshots (at most " + MAX_SNAPSHOTS + ")");
        }
        checkOffset("snapshot table", snapshotsOffset, nbSnapshots * 40);
        if (nbSnapshots > 0 && !checkMode) {
            checkTable("snapshot table", snapshotsOffset, 40, fileSize, true);
        }
    }

    /** QEMU's test of a table's offset, made whether or not the table has entries. */
    private void checkOffset(String what, long offset, long bytes) {
        if (offset % (1 << clusterBits) != 0 || offset < 0 || Long.MAX_VALUE - bytes < offset) {
            throw new Qcow2Exception("has its " + what + " at invalid offset " + Long.toUnsignedString(offset));
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

    /**
     * A string from the image (a backing file name, a feature or snapshot name) as it may appear
     * in a one-line message: control characters, backslashes and invalid UTF-8 (decoded as
     * U+FFFD) are escaped, so a hostile name can neither break the line nor fake another one.
     */
    static String printable(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean plain = c >= 0x20 && c != 0x7f && c != '\\' && !(c >= 0x80 && c < 0xa0)
                    && c != '\u2028' && c != '\u2029' && c != '\ufffd';
            if (plain && b == null) {
                continue;
            }
            if (b == null) {
                b = new StringBuilder(s.length() + 16).append(s, 0, i);
            }
            if (plain) {
                b.append(c);
            } else if (c == '\\') {
                b.append("\\\\");
            } else if (c < 0x100) {
                b.append(String.format("\\x%02x", (int) c));
            } else {
                b.append(String.format("\\u%04x", (int) c));
            }
        }
        return b == null ? s : b.toString();
    }

    /** {offset, size} of the bitmap directory from the bitmaps extension, or null if there is none that fits. */
    long[] bitmapDirectory() {
        for (Extension e : extensions) {
            if (e.type() == EXT_BITMAPS && e.data().length >= 24) {
                ByteBuffer x = ByteBuffer.wrap(e.data());
                long size = x.getLong(8);
                long offset = x.getLong(16);
                if (size > 0 && offset > 0 && size <= (64L << 20)) {
                    return new long[] {offset, size};
                }
            }
        }
        return null;
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
