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
                throw new Qcow2Exception("has snapshot '" + e.name + "' with its L1 table at invalid offset "
                        + Long.toUnsignedString(e.l1Offset));
            }
            // compared without adding: an offset near 2^63 plus the size would wrap below the file size
            if (e.l1Size * 8 > Qcow2Header.MAX_L1_BYTES || e.l1Offset > fileSize - e.l1Size * 8) {
                throw new Qcow2Exception("has snapshot '" + e.name + "' with an L1 table of " + e.l1Size
                        + " entries at offset " + Long.toUnsignedString(e.l1Offset) + " that does not fit the file");
            }
            if (e.diskSize < 0) {
                throw new Qcow2Exception("has snapshot '" + e.name + "' with a disk size of "
                        + Long.toUnsignedString(e.diskSize) + " bytes");
            }
            if (e.vmStateSize < 0) {
                throw new Qcow2Exception("has snapshot '" + e.name + "' with a VM state of "
                        + Long.toUnsignedString(e.vmStateSize) + " bytes");
            }
            out.add(e);
            pos += (40 + (int) extraLen + idLen + nameLen + 7) & ~7;
        }
        return new Parsed(out, pos);
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
