package io.diskstack.formats.dedup;

import io.diskstack.core.BlockChild;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** The data child's header in block 0 (FORMAT.md): which device the blocks belong to. */
final class DataHeader {
    static final byte[] MAGIC = "DDUPDATA".getBytes(StandardCharsets.US_ASCII);

    private DataHeader() {}

    static byte[] encode(byte[] uuid, int blockSize, long dataBlocks) {
        byte[] b = new byte[Geometry.PAGE];
        System.arraycopy(MAGIC, 0, b, 0, 8);
        Bytes.putU32(b, 8, Superblock.VERSION);
        System.arraycopy(uuid, 0, b, 16, 16);
        Bytes.putU32(b, 32, blockSize);
        Bytes.putU64(b, 40, dataBlocks);
        Bytes.putU32(b, 4092, Bytes.crc32c(b, 0, 4092) & 0xffff_ffffL);
        return b;
    }

    /**
     * Checks that a data child belongs to the device the superblock describes and is large
     * enough for it.
     *
     * @throws DedupException naming the child and what is wrong
     */
    static void verify(BlockChild data, Superblock sb, String describe) throws IOException {
        Geometry g = sb.geometry;
        if (data.size() < Geometry.PAGE) {
            throw new DedupException(describe + " is not a dedup data device: it has only " + data.size() + " bytes");
        }
        ByteBuffer buf = ByteBuffer.allocate(Geometry.PAGE);
        data.read(0, buf);
        byte[] b = buf.array();
        if (!Arrays.equals(Arrays.copyOf(b, 8), MAGIC)) {
            if (Arrays.equals(Arrays.copyOf(b, 8), Superblock.MAGIC)) {
                throw new DedupException(describe + " is a dedup metadata device, not a data device "
                        + "(are metadata and data swapped?)");
            }
            throw new DedupException(describe + " is not a dedup data device (no "
                    + new String(MAGIC, StandardCharsets.US_ASCII) + " header)");
        }
        if (Bytes.u32(b, 4092) != (Bytes.crc32c(b, 0, 4092) & 0xffff_ffffL)) {
            throw new DedupException(describe + " has a damaged header (checksum mismatch)");
        }
        long version = Bytes.u32(b, 8);
        if (version != Superblock.VERSION) {
            throw new DedupException(describe + " has dedup format version " + version + "; this diskstack reads version "
                    + Superblock.VERSION);
        }
        byte[] uuid = Arrays.copyOfRange(b, 16, 32);
        if (!Arrays.equals(uuid, sb.uuid)) {
            throw new DedupException(describe + " belongs to another dedup device (uuid " + Superblock.uuidText(uuid)
                    + "; the metadata's is " + Superblock.uuidText(sb.uuid) + ")");
        }
        if (Bytes.u32(b, 32) != g.blockSize || Bytes.u64(b, 40) != g.dataBlocks) {
            throw new DedupException(describe + " says " + Bytes.u64(b, 40) + " blocks of " + Bytes.u32(b, 32)
                    + " bytes; the metadata says " + g.dataBlocks + " of " + g.blockSize);
        }
        if (data.size() < g.dataBytes()) {
            throw new DedupException(describe + " is too small: the device needs " + g.dataBytes() + " bytes, it has "
                    + data.size());
        }
    }
}
