package io.diskstack.formats.qcow2;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** The snapshot table (spec: "Snapshots"): parsing with bounds checks, and writing it back. */
final class SnapshotTable {
    /** One entry; {@code extra} keeps extra data we do not know, so rewriting preserves it. */
    static final class Entry {
        long l1Offset;
        long l1Size;
        String id;
        String name;
        long dateSeconds;
        long dateNanos;
        long vmClockNanos;
        long vmStateSize;
        long diskSize;
        long icount;
        byte[] extra = new byte[0];

        int byteSize() {
            int extraSize = Math.max(24, extra.length);
            int n = 40 + extraSize + utf8(id).length + utf8(name).length;
            return (n + 7) & ~7;
        }
    }

    /** Parsed entries and the table's length on disk (entries may be shorter than the ones we write). */
    record Parsed(List<Entry> entries, long bytes) {}

    private SnapshotTable() {}

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Parses {@code count} entries from {@code b} (the table's bytes, as many as the file holds).
     * The length on disk comes from the entries as they are: QEMU 1.1–4.2 wrote 16 bytes of extra
     * data, old version 2 images none, so it can be shorter than what {@link #byteSize} computes.
     */
    static Parsed parse(ByteBuffer b, long count, int version, long defaultDiskSize, int clusterSize,
                             long fileSize) {
        List<Entry> out = new ArrayList<>();
        int pos = 0;
        for (long i = 0; i < count; i++) {
            if (pos + 40 > b.limit()) {
                throw new Qcow2Exception("has a snapshot table that runs past the end of the file");
            }
            Entry e = new Entry();
            e.l1Offset = b.getLong(pos);
            e.l1Size = Integer.toUnsignedLong(b.getInt(pos + 8));
            int idLen = Short.toUnsignedInt(b.getShort(pos + 12));
            int nameLen = Short.toUnsignedInt(b.getShort(pos + 14));
            e.dateSeconds = Integer.toUnsignedLong(b.getInt(pos + 16));
            e.dateNanos = Integer.toUnsignedLong(b.getInt(pos + 20));
            e.vmClockNanos = b.getLong(pos + 24);
            e.vmStateSize = Integer.toUnsignedLong(b.getInt(pos + 32));
            long extraLen = Integer.toUnsignedLong(b.getInt(pos + 36));
            if (extraLen > 1024) {
                throw new Qcow2Exception("has snapshot " + i + " with " + extraLen + " bytes of extra data (at most 1024)");
            }
            if (pos + 40 + extraLen + idLen + nameLen > b.limit()) {
                throw new Qcow2Exception("has a snapshot table that runs past the end of the file");
            }
            e.extra = new byte[(int) extraLen];
            b.get(pos + 40, e.extra);
            ByteBuffer x = ByteBuffer.wrap(e.extra);
            e.diskSize = defaultDiskSize;
            e.icount = -1;
            if (extraLen >= 8) {
                e.vmStateSize = x.getLong(0);
            }
            if (extraLen >= 16) {
                e.diskSize = x.getLong(8);
            }
            if (extraLen >= 24) {
                e.icount = x.getLong(16);
            }
            byte[] id = new byte[idLen];
            b.get(pos + 40 + (int) extraLen, id);
            byte[] name = new byte[nameLen];
            b.get(pos + 40 + (int) extraLen + idLen, name);
            e.id = new String(id, StandardCharsets.UTF_8);
            e.name = new String(name, StandardCharsets.UTF_8);
            if (e.l1Size > 0 && (e.l1Offset <= 0 || e.l1Offset % clusterSize != 0)) {
                throw new Qcow2Exception("has snapshot '" + Qcow2Header.printable(e.name) + "' with its L1 table at invalid offset "
                        + Long.toUnsignedString(e.l1Offset));
            }
            // compared without adding: an offset near 2^63 plus the size would wrap below the file size
            if (e.l1Size * 8 > Qcow2Header.MAX_L1_BYTES || e.l1Offset > fileSize - e.l1Size * 8) {
                throw new Qcow2Exception("has snapshot '" + Qcow2Header.printable(e.name) + "' with an L1 table of " + e.l1Size
                        + " entries at offset " + Long.toUnsignedString(e.l1Offset) + " that does not fit the file");
            }
            if (e.diskSize < 0) {
                throw new Qcow2Exception("has snapshot '" + Qcow2Header.printable(e.name) + "' with a disk size of "
                        + Long.toUnsignedString(e.diskSize) + " bytes");
            }
            if (e.vmStateSize < 0) {
                throw new Qcow2Exception("has snapshot '" + Qcow2Header.printable(e.name) + "' with a VM state of "
                        + Long.toUnsignedString(e.vmStateSize) + " bytes");
            }
            out.add(e);
            pos += (40 + (int) extraLen + idLen + nameLen + 7) & ~7;
        }
        return new Parsed(out, pos);
    }

    /** What {@link #readLenient} found: the entries and the table's length, or why the table cannot be read. */
    record Lenient(List<Entry> entries, long bytes, String error) {}

    /** QEMU's limit on the whole table. */
    static final long MAX_TABLE_BYTES = 64L << 20;

    /**
     * Reads the table as {@code qemu-img check} does: bytes past the end of the file read as
     * zeroes, and entries are taken as they are (a bad L1 table is the check's to report). Only
     * what makes the table unreadable is an error: too many entries, an invalid offset, too much
     * extra data, a table over 64 MiB.
     */
    static Lenient readLenient(io.diskstack.core.BlockChild file, long offset, long count, int clusterSize,
                               long defaultDiskSize) throws java.io.IOException {
        if (count > Qcow2Header.MAX_SNAPSHOTS) {
            return new Lenient(List.of(), 0, "the snapshot table claims " + count + " snapshots (at most "
                    + Qcow2Header.MAX_SNAPSHOTS + ")");
        }
        if (offset < 0 || Long.MAX_VALUE - count * 40 < offset || offset % clusterSize != 0) {
            return new Lenient(List.of(), 0, "the snapshot table offset " + Long.toUnsignedString(offset)
                    + " is invalid");
        }
        List<Entry> out = new ArrayList<>();
        long pos = 0;
        for (long i = 0; i < count; i++) {
            pos = (pos + 7) & ~7L;
            ByteBuffer h = ByteBuffer.allocate(40);
            file.read(offset + pos, h);
            Entry e = new Entry();
            e.l1Offset = h.getLong(0);
            e.l1Size = Integer.toUnsignedLong(h.getInt(8));
            int idLen = Short.toUnsignedInt(h.getShort(12));
            int nameLen = Short.toUnsignedInt(h.getShort(14));
            e.dateSeconds = Integer.toUnsignedLong(h.getInt(16));
            e.dateNanos = Integer.toUnsignedLong(h.getInt(20));
            e.vmClockNanos = h.getLong(24);
            e.vmStateSize = Integer.toUnsignedLong(h.getInt(32));
            long extraLen = Integer.toUnsignedLong(h.getInt(36));
            if (extraLen > 1024) {
                return new Lenient(List.of(), 0, "snapshot table entry " + i + " has " + extraLen
                        + " bytes of extra data (at most 1024)");
            }
            ByteBuffer rest = ByteBuffer.allocate((int) extraLen + idLen + nameLen);
            file.read(offset + pos + 40, rest);
            e.extra = java.util.Arrays.copyOf(rest.array(), (int) extraLen);
            ByteBuffer x = ByteBuffer.wrap(e.extra);
            e.diskSize = extraLen >= 16 ? x.getLong(8) : defaultDiskSize;
            if (extraLen >= 8) {
                e.vmStateSize = x.getLong(0);
            }
            e.icount = extraLen >= 24 ? x.getLong(16) : -1;
            e.id = new String(rest.array(), (int) extraLen, idLen, StandardCharsets.UTF_8);
            e.name = new String(rest.array(), (int) extraLen + idLen, nameLen, StandardCharsets.UTF_8);
            pos += 40 + extraLen + idLen + nameLen;
            if (pos > MAX_TABLE_BYTES) {
                return new Lenient(List.of(), 0, "the snapshot table is over " + (MAX_TABLE_BYTES >> 20) + " MiB");
            }
            out.add(e);
        }
        return new Lenient(out, pos, null);
    }

    static int byteSize(List<Entry> entries) {
        int n = 0;
        for (Entry e : entries) {
            n += e.byteSize();
        }
        return n;
    }

    static ByteBuffer serialize(List<Entry> entries) {
        ByteBuffer b = ByteBuffer.allocate(byteSize(entries));
        int pos = 0;
        for (Entry e : entries) {
            byte[] id = utf8(e.id);
            byte[] name = utf8(e.name);
            byte[] extra = new byte[Math.max(24, e.extra.length)];
            System.arraycopy(e.extra, 0, extra, 0, e.extra.length);
            ByteBuffer x = ByteBuffer.wrap(extra);
            x.putLong(0, e.vmStateSize);
            x.putLong(8, e.diskSize);
            x.putLong(16, e.icount);
            b.putLong(pos, e.l1Offset);
            b.putInt(pos + 8, (int) e.l1Size);
            b.putShort(pos + 12, (short) id.length);
            b.putShort(pos + 14, (short) name.length);
            b.putInt(pos + 16, (int) e.dateSeconds);
            b.putInt(pos + 20, (int) e.dateNanos);
            b.putLong(pos + 24, e.vmClockNanos);
            b.putInt(pos + 32, (int) Math.min(e.vmStateSize, 0xffffffffL));
            b.putInt(pos + 36, extra.length);
            b.put(pos + 40, extra);
            b.put(pos + 40 + extra.length, id);
            b.put(pos + 40 + extra.length + id.length, name);
            pos += e.byteSize();
        }
        return b.clear();
    }
}
