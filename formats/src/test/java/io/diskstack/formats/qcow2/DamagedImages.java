package io.diskstack.formats.qcow2;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Mutations of qcow2 images aimed at the fields damage and hostile images hit: the entries of
 * the L1, L2 and refcount tables, the refcounts of clusters in use, the snapshot table, header
 * fields and subcluster bitmaps; a share of purely random ones ({@link Qcow2FuzzTest#mutate}).
 * The image's tables are found from its own bytes; a mutation that finds no target falls back
 * to a random one.
 */
final class DamagedImages {
    private DamagedImages() {}

    /** Where an image's tables are, read from its bytes. */
    private static final class Tables {
        final ByteBuffer b;
        final int clusterBits;
        final int cs;
        final boolean extendedL2;
        final int refcountBits;
        final long l1;
        final int l1Size;
        final long reftable;
        final int reftableEntries;
        final long snapshots;
        final int nbSnapshots;
        final List<Long> l2s = new ArrayList<>();
        final List<Long> refblocks = new ArrayList<>();
        /** Offsets of allocated L2 entries (their first 8 bytes). */
        final List<Long> l2Entries = new ArrayList<>();
        final List<Long> dataClusters = new ArrayList<>();

        Tables(byte[] img) {
            b = ByteBuffer.wrap(img);
            clusterBits = b.getInt(20);
            cs = 1 << clusterBits;
            int version = b.getInt(4);
            extendedL2 = version >= 3 && (b.getLong(72) & 16) != 0;
            refcountBits = version >= 3 ? 1 << b.getInt(96) : 16;
            l1 = b.getLong(40);
            l1Size = b.getInt(36);
            reftable = b.getLong(48);
            reftableEntries = b.getInt(56) * cs / 8;
            snapshots = b.getLong(64);
            nbSnapshots = b.getInt(60);
            int entrySize = extendedL2 ? 16 : 8;
            for (int i = 0; i < l1Size && inFile(l1 + 8L * i, 8); i++) {
                long l2 = b.getLong((int) (l1 + 8L * i)) & Layout.OFFSET_MASK;
                if (l2 != 0 && inFile(l2, cs)) {
                    l2s.add(l2);
                    for (int k = 0; k < cs / entrySize; k++) {
                        long at = l2 + (long) k * entrySize;
                        long e = b.getLong((int) at);
                        if ((e & Layout.OFFSET_MASK) != 0) {
                            l2Entries.add(at);
                            if ((e & Layout.COMPRESSED) == 0) {
                                dataClusters.add(e & Layout.OFFSET_MASK);
                            }
                        }
                    }
                }
            }
            for (int i = 0; i < reftableEntries && inFile(reftable + 8L * i, 8); i++) {
                long block = b.getLong((int) (reftable + 8L * i));
                if (block != 0 && inFile(block, cs)) {
                    refblocks.add(block);
                }
            }
        }

        boolean inFile(long at, long len) {
            return at > 0 && at + len <= b.capacity();
        }

        /** Offsets of metadata an entry may be pointed at. */
        List<Long> metadata() {
            List<Long> m = new ArrayList<>(List.of(0L, l1 & -(long) cs, reftable));
            m.addAll(l2s);
            m.addAll(refblocks);
            if (nbSnapshots > 0) {
                m.add(snapshots & -(long) cs);
            }
            return m;
        }
    }

    private static <T> T pick(List<T> list, Random rnd) {
        return list.get(rnd.nextInt(list.size()));
    }

    static byte[] mutateQcow2(byte[] seed, Random rnd) {
        byte[] img = seed.clone();
        Tables t = new Tables(img);
        ByteBuffer b = t.b;
        int kind = rnd.nextInt(20);
        switch (kind) {
            case 0, 1, 2 -> { // an L2 entry: reserved bits, COPIED, compressed, zero flag, past the end
                if (t.l2Entries.isEmpty()) {
                    return Qcow2FuzzTest.mutate(img, rnd);
                }
                int at = (int) (long) pick(t.l2Entries, rnd);
                long e = b.getLong(at);
                long[] flips = {1L << (1 + rnd.nextInt(8)), 1L << (56 + rnd.nextInt(6)), Layout.COPIED,
                    Layout.COMPRESSED, Layout.ZERO, 1L << 40, (long) rnd.nextInt(t.cs) & ~511L};
                b.putLong(at, e ^ flips[rnd.nextInt(flips.length)]);
            }
            case 3, 4, 5 -> { // an L2 entry pointed at metadata or at another guest offset's data
                if (t.l2Entries.isEmpty()) {
                    return Qcow2FuzzTest.mutate(img, rnd);
                }
                int at = (int) (long) pick(t.l2Entries, rnd);
                List<Long> targets = rnd.nextBoolean() || t.dataClusters.isEmpty() ? t.metadata() : t.dataClusters;
                long copied = rnd.nextBoolean() ? Layout.COPIED : 0;
                b.putLong(at, pick(targets, rnd) | copied);
            }
            case 6, 7 -> { // an L1 entry: reserved bits, COPIED, pointed at metadata
                if (t.l1Size == 0 || !t.inFile(t.l1, 8L * t.l1Size)) {
                    return Qcow2FuzzTest.mutate(img, rnd);
                }
                int at = (int) (t.l1 + 8L * rnd.nextInt(Math.min(t.l1Size, 4)));
                long e = b.getLong(at);
                long[] values = {e ^ (1L << rnd.nextInt(9)), e ^ (1L << (56 + rnd.nextInt(7))), e ^ Layout.COPIED,
                    pick(t.metadata(), rnd) | Layout.COPIED, e + t.cs};
                b.putLong(at, values[rnd.nextInt(values.length)]);
            }
            case 8, 9, 10, 11 -> { // the refcount of a cluster in use (or of a free one: a leak)
                if (t.refblocks.isEmpty() || t.refcountBits < 8) {
                    return Qcow2FuzzTest.mutate(img, rnd);
                }
                long block = t.refblocks.get(0);
                int clusters = img.length / t.cs + 2;
                long cluster = rnd.nextInt(clusters);
                int width = t.refcountBits / 8;
                int at = (int) (block + cluster * width);
                long[] values = {0, 0, 1, 2, 3, (1L << Math.min(62, t.refcountBits)) - 1};
                long v = values[rnd.nextInt(values.length)];
                switch (width) {
                    case 1 -> b.put(at, (byte) v);
                    case 2 -> b.putShort(at, (short) v);
                    case 4 -> b.putInt(at, (int) v);
                    default -> b.putLong(at, v);
                }
            }
            case 12, 13 -> { // a refcount table entry
                if (!t.inFile(t.reftable, 8)) {
                    return Qcow2FuzzTest.mutate(img, rnd);
                }
                int at = (int) (t.reftable + 8L * rnd.nextInt(2));
                long e = b.getLong(at);
                long[] values = {e | (1L << rnd.nextInt(9)), e | (1L << (56 + rnd.nextInt(8))), 0,
                    (long) img.length + t.cs * (1 + rnd.nextInt(4)), t.l1 & -(long) t.cs, e + 512,
                    t.l2s.isEmpty() ? e : t.l2s.get(0)};
                b.putLong(at, values[rnd.nextInt(values.length)]);
            }
            case 14, 15 -> { // the snapshot table
                if (t.nbSnapshots == 0 || !t.inFile(t.snapshots, 40)) {
                    return Qcow2FuzzTest.mutate(img, rnd);
                }
                int s = (int) t.snapshots;
                switch (rnd.nextInt(5)) {
                    case 0 -> b.putInt(s + 36, rnd.nextInt(16)); // extra data cut short: incomplete
                    case 1 -> b.putLong(s, b.getLong(s) + (rnd.nextBoolean() ? 8 : t.cs));
                    case 2 -> b.putInt(s + 8, rnd.nextBoolean() ? 0 : 1 << 23);
                    case 3 -> b.putInt(60, t.nbSnapshots + 1 + rnd.nextInt(3));
                    default -> b.putShort(s + 14, (short) rnd.nextInt(1 << 16));
                }
            }
            case 16 -> { // header fields aimed at QEMU's bounds
                switch (rnd.nextInt(4)) {
                    case 0 -> b.putInt(100, 96 + rnd.nextInt(40));
                    case 1 -> b.putLong(72, b.getLong(72) ^ (1L << rnd.nextInt(6)));
                    case 2 -> b.putLong(40, t.l1 + (rnd.nextBoolean() ? 512 : t.cs));
                    default -> b.putInt(56, rnd.nextInt(3));
                }
            }
            case 17 -> { // a subcluster bitmap
                if (!t.extendedL2 || t.l2Entries.isEmpty()) {
                    return Qcow2FuzzTest.mutate(img, rnd);
                }
                int at = (int) (long) pick(t.l2Entries, rnd) + 8;
                b.putLong(at, b.getLong(at) ^ (1L << rnd.nextInt(64)));
            }
            default -> {
                return Qcow2FuzzTest.mutate(img, rnd);
            }
        }
        return img;
    }
}
