package io.diskstack.formats.dedup;

import io.diskstack.core.BlockChild;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The metadata journal (FORMAT.md): transactions of page patches, written one after the other
 * from journal page 0 and read back at open. Reading checks every transaction before anything is
 * applied, tells a torn last transaction (a crash during a commit: ignored) from a damaged
 * journal (a torn one with more after it: refused), and checks that every patch stays inside the
 * pages a journal may change.
 */
final class Journal {
    static final byte[] MAGIC = "DDUPJRNL".getBytes(StandardCharsets.US_ASCII);
    static final int HEADER = 64;

    private final BlockChild metadata;
    private final Geometry g;
    private final byte[] uuid;
    private final String describe;

    Journal(BlockChild metadata, Geometry g, byte[] uuid, String describe) {
        this.metadata = metadata;
        this.g = g;
        this.uuid = uuid;
        this.describe = describe;
    }

    /** One transaction read back: its patches ({@code count} of them in {@code payload}). */
    record Transaction(long seq, long position, int length, byte[] payload, int count) {}

    /** Receives one patch: {@code length} bytes of {@code src} from {@code srcOffset} go to the page. */
    interface PatchSink {
        void patch(long page, int offset, byte[] src, int srcOffset, int length) throws IOException;
    }

    /** The transaction's bytes: header, payload, zero padding to whole pages. */
    byte[] encode(long seq, byte[] payload, int count) {
        int length = (int) Geometry.ceilDiv(HEADER + payload.length, Geometry.PAGE) * Geometry.PAGE;
        byte[] b = new byte[length];
        System.arraycopy(MAGIC, 0, b, 0, 8);
        Bytes.putU64(b, 8, seq);
        System.arraycopy(uuid, 0, b, 16, 16);
        Bytes.putU32(b, 32, length);
        Bytes.putU32(b, 36, count);
        Bytes.putU32(b, 40, payload.length);
        Bytes.putU32(b, 44, Bytes.crc32c(payload, 0, payload.length) & 0xffff_ffffL);
        Bytes.putU32(b, 60, Bytes.crc32c(b, 0, 60) & 0xffff_ffffL);
        System.arraycopy(payload, 0, b, HEADER, payload.length);
        return b;
    }

    void write(long position, byte[] record) throws IOException {
        metadata.write(g.journalStart * Geometry.PAGE + position, ByteBuffer.wrap(record));
    }

    /**
     * The transactions to replay, from journal page 0 with sequence {@code firstSeq}, all checked.
     *
     * @param tornLast set to true if a torn last transaction was left out
     * @throws DedupException if the journal is damaged: nothing has been applied or written
     */
    List<Transaction> read(long firstSeq, boolean[] tornLast) throws IOException {
        List<Transaction> out = new ArrayList<>();
        long pos = 0;
        long seq = firstSeq;
        long end = g.journalBytes();
        while (pos + Geometry.PAGE <= end) {
            byte[] head = readAt(pos, Geometry.PAGE);
            int length = headerLength(head, seq, end - pos);
            if (length < 0) {
                if (length == TORN_HEADER && nextFollows(pos + Geometry.PAGE, seq + 1)) {
                    throw damaged(seq, pos, "its header checksum does not match");
                }
                break;
            }
            byte[] record = length == Geometry.PAGE ? head : readAt(pos, length);
            int payloadLength = (int) Bytes.u32(record, 40);
            long crc = Bytes.u32(record, 44);
            if ((Bytes.crc32c(record, HEADER, payloadLength) & 0xffff_ffffL) != crc) {
                if (pos + length + Geometry.PAGE <= end && headerLength(readAt(pos + length, Geometry.PAGE), seq + 1,
                        end - pos - length) > 0) {
                    throw damaged(seq, pos, "its checksum does not match, and transaction " + (seq + 1) + " follows it");
                }
                tornLast[0] = true;
                break;
            }
            byte[] payload = Arrays.copyOfRange(record, HEADER, HEADER + payloadLength);
            int count = (int) Bytes.u32(record, 36);
            Transaction t = new Transaction(seq, pos, length, payload, count);
            forEachPatch(t, (page, offset, src, srcOffset, len) -> { });
            out.add(t);
            pos += length;
            seq++;
        }
        return out;
    }

    private static final int NOT_A_HEADER = -1;
    private static final int TORN_HEADER = -2;

    /** The length of a good header with this sequence number that fits, else a negative code. */
    private int headerLength(byte[] h, long seq, long room) {
        if (!Arrays.equals(Arrays.copyOf(h, 8), MAGIC)) {
            return NOT_A_HEADER;
        }
        if (Bytes.u32(h, 60) != (Bytes.crc32c(h, 0, 60) & 0xffff_ffffL)) {
            return TORN_HEADER;
        }
        long length = Bytes.u32(h, 32);
        long payload = Bytes.u32(h, 40);
        if (Bytes.u64(h, 8) != seq || !Arrays.equals(Arrays.copyOfRange(h, 16, 32), uuid) || length < Geometry.PAGE
                || length % Geometry.PAGE != 0 || length > room || payload > length - HEADER) {
            return NOT_A_HEADER;
        }
        return (int) length;
    }

    /** True if a good header with sequence {@code seq} starts at a page boundary from {@code from} on. */
    private boolean nextFollows(long from, long seq) throws IOException {
        for (long p = from; p + Geometry.PAGE <= g.journalBytes(); p += Geometry.PAGE) {
            if (headerLength(readAt(p, Geometry.PAGE), seq, g.journalBytes() - p) > 0) {
                return true;
            }
        }
        return false;
    }

    /** Calls the sink for each patch, checking each one first. */
    void forEachPatch(Transaction t, PatchSink sink) throws IOException {
        byte[] b = t.payload();
        int pos = 0;
        for (int i = 0; i < t.count(); i++) {
            if (pos + 8 > b.length) {
                throw damaged(t.seq(), t.position(), "its patch " + i + " runs past its payload");
            }
            long page = Bytes.u32(b, pos);
            int offset = Bytes.u16(b, pos + 4);
            int length = Bytes.u16(b, pos + 6);
            if (!g.isPatchable(page) || length == 0 || offset + length > Geometry.PAGE || pos + 8 + length > b.length) {
                throw damaged(t.seq(), t.position(), "its patch " + i + " (page " + page + ", bytes " + offset + "+"
                        + length + ") lies outside the pages a transaction may change");
            }
            sink.patch(page, offset, b, pos + 8, length);
            pos += 8 + length;
        }
        if (pos != b.length) {
            throw damaged(t.seq(), t.position(), "its payload is longer than its patches");
        }
    }

    private DedupException damaged(long seq, long pos, String why) {
        return new DedupException(describe + " has a damaged journal: transaction " + seq + " at byte "
                + (g.journalStart * Geometry.PAGE + pos) + " is torn or corrupt (" + why + ")");
    }

    private byte[] readAt(long pos, int length) throws IOException {
        byte[] b = new byte[length];
        metadata.read(g.journalStart * Geometry.PAGE + pos, ByteBuffer.wrap(b));
        return b;
    }
}
