package io.diskstack.formats.dedup;

import io.diskstack.core.BlockChild;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** The metadata child's superblock, two copies at pages 0 and 1 (FORMAT.md). */
final class Superblock {
    static final byte[] MAGIC = "DDUPMETA".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    static final int HASH_SHA256 = 1;

    final byte[] uuid;
    final long generation;
    final long journalSeq;
    final int hash;
    final Geometry geometry;

    Superblock(byte[] uuid, long generation, long journalSeq, int hash, Geometry geometry) {
        this.uuid = uuid.clone();
        this.generation = generation;
        this.journalSeq = journalSeq;
        this.hash = hash;
        this.geometry = geometry;
    }

    /** The same with the next generation and a new journal start, for a checkpoint. */
    Superblock next(long newJournalSeq) {
        return new Superblock(uuid, generation + 1, newJournalSeq, hash, geometry);
    }

    /** The page this copy goes to: the copies alternate, so the other one stays good. */
    long page() {
        return generation % 2 == 0 ? Geometry.SUPERBLOCK_A : Geometry.SUPERBLOCK_B;
    }

    byte[] encode() {
        byte[] b = new byte[Geometry.PAGE];
        Geometry g = geometry;
        System.arraycopy(MAGIC, 0, b, 0, 8);
        Bytes.putU32(b, 8, VERSION);
        System.arraycopy(uuid, 0, b, 16, 16);
        Bytes.putU64(b, 32, generation);
        Bytes.putU64(b, 40, journalSeq);
        Bytes.putU64(b, 48, g.virtualSize);
        Bytes.putU32(b, 56, g.blockSize);
        Bytes.putU32(b, 60, hash);
        Bytes.putU64(b, 64, g.dataBlocks);
        Bytes.putU64(b, 72, g.journalStart);
        Bytes.putU64(b, 80, g.journalPages);
        Bytes.putU64(b, 88, g.mapStart);
        Bytes.putU64(b, 96, g.mapPages);
        Bytes.putU64(b, 104, g.recordStart);
        Bytes.putU64(b, 112, g.recordPages);
        Bytes.putU64(b, 120, g.summaryStart);
        Bytes.putU64(b, 128, g.summaryPages);
        Bytes.putU64(b, 136, g.indexStart);
        Bytes.putU64(b, 144, g.buckets);
        Bytes.putU32(b, 4092, Bytes.crc32c(b, 0, 4092) & 0xffff_ffffL);
        return b;
    }

    void write(BlockChild metadata) throws IOException {
        metadata.write(page() * Geometry.PAGE, ByteBuffer.wrap(encode()));
    }

    /**
     * The current superblock of a metadata child: the good copy with the higher generation.
     *
     * @param describe how messages name the child: {@code metadata child 'm.img'}
     * @throws DedupException if neither copy is good, or the current one is of another version,
     *                        another kind of dedup child, or describes an impossible layout
     */
    static Superblock read(BlockChild metadata, String describe) throws IOException {
        if (metadata.size() < 2L * Geometry.PAGE) {
            throw new DedupException(describe + " is not a dedup metadata device: it has only " + metadata.size()
                    + " bytes");
        }
        ByteBuffer both = ByteBuffer.allocate(2 * Geometry.PAGE);
        metadata.read(0, both);
        byte[] a = Arrays.copyOfRange(both.array(), 0, Geometry.PAGE);
        byte[] b = Arrays.copyOfRange(both.array(), Geometry.PAGE, 2 * Geometry.PAGE);
        boolean goodA = isGood(a);
        boolean goodB = isGood(b);
        if (!goodA && !goodB) {
            if (Arrays.equals(Arrays.copyOf(a, 8), DataHeader.MAGIC)) {
                throw new DedupException(describe + " is a dedup data device, not a metadata device "
                        + "(are metadata and data swapped?)");
            }
            boolean magic = Arrays.equals(Arrays.copyOf(a, 8), MAGIC) || Arrays.equals(Arrays.copyOf(b, 8), MAGIC);
            throw new DedupException(describe + (magic ? " has no intact superblock (both copies fail their checksum)"
                    : " is not a dedup metadata device (no " + new String(MAGIC, StandardCharsets.US_ASCII)
                    + " superblock)"));
        }
        byte[] current = !goodB || (goodA && Bytes.u64(a, 32) > Bytes.u64(b, 32)) ? a : b;
        return parse(current, describe);
    }

    private static boolean isGood(byte[] b) {
        return Arrays.equals(Arrays.copyOf(b, 8), MAGIC)
                && (Bytes.u32(b, 4092) == (Bytes.crc32c(b, 0, 4092) & 0xffff_ffffL));
    }

    private static Superblock parse(byte[] b, String describe) {
        long version = Bytes.u32(b, 8);
        if (version != VERSION) {
            throw new DedupException(describe + " has dedup format version " + version + "; this diskstack reads version "
                    + VERSION);
        }
        long incompatible = Bytes.u32(b, 12);
        if (incompatible != 0) {
            throw new DedupException(describe + " uses unknown incompatible features 0x" + Long.toHexString(incompatible));
        }
        int hash = (int) Bytes.u32(b, 60);
        if (hash != HASH_SHA256) {
            throw new DedupException(describe + " uses unknown hash " + hash);
        }
        long blockSize = Bytes.u32(b, 56);
        Geometry g = new Geometry(Bytes.u64(b, 48), (int) Math.min(blockSize, Integer.MAX_VALUE), Bytes.u64(b, 64),
                Bytes.u64(b, 72), Bytes.u64(b, 80), Bytes.u64(b, 88), Bytes.u64(b, 96), Bytes.u64(b, 104),
                Bytes.u64(b, 112), Bytes.u64(b, 120), Bytes.u64(b, 128), Bytes.u64(b, 136), Bytes.u64(b, 144));
        String problem = g.check();
        if (problem != null) {
            throw new DedupException(describe + " has a damaged superblock: " + problem);
        }
        return new Superblock(Arrays.copyOfRange(b, 16, 32), Bytes.u64(b, 32), Bytes.u64(b, 40), hash, g);
    }

    static String uuidText(byte[] uuid) {
        ByteBuffer b = ByteBuffer.wrap(uuid);
        return new java.util.UUID(b.getLong(), b.getLong()).toString();
    }
}
