package io.diskstack.filters.luks;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.TransformNode;
import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlProvider;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;

/**
 * An open LUKS volume: shows the decrypted payload and encrypts every write into pooled
 * buffers (the caller's buffer is never touched). Requests arrive aligned to the encryption
 * sector; the core does read-modify-write for the rest. Discards are not passed down: a
 * discarded range would read back as decrypted noise, neither the old data nor zeroes (dm-crypt
 * forwards them only with allow-discards, for that reason); and everything reads as data, since
 * the child's holes and zeroes mean nothing here.
 */
final class LuksNode extends TransformNode implements ControlProvider {
    /** Writes are encrypted and sent down in pieces of at most this size. */
    private static final int WRITE_CHUNK = 1 << 20;

    private final HeaderDevice headerDevice;
    private final LuksKeyControl keyControl;
    private final CipherPool ciphers;
    private final long payload;
    private final long fixedSize;
    private final long ivTweak;
    private final int sectorSize;
    private final String description;

    LuksNode(NodeOpenContext ctx, BlockChild data, BlockChild header, LuksHeader h, byte[] volumeKey)
            throws IOException {
        super(ctx, data);
        this.headerDevice = HeaderDevice.of(header != null ? header : data);
        this.payload = h.payloadOffset();
        this.fixedSize = h.fixedSize();
        this.ivTweak = h.ivTweak();
        this.sectorSize = h.sectorSize();
        this.description = h.describe();
        this.ciphers = new CipherPool(h.cipher(), volumeKey, sectorSize);
        this.keyControl = new LuksKeyControl(this, (header != null ? header : data).node(), h, ctx.objects(), new ImageRef(ctx.owner(), filename()));
    }

    HeaderDevice headerDevice() {
        return headerDevice;
    }

    CipherPool ciphers() {
        return ciphers;
    }

    @Override
    public long size() {
        return payloadSize(child().size(), payload, fixedSize, sectorSize);
    }

    /** The volume's size: a LUKS2 segment's fixed size, else the rest of the file in whole sectors. */
    static long payloadSize(long fileSize, long payload, long fixedSize, int sectorSize) {
        if (fixedSize >= 0) {
            return fixedSize;
        }
        long n = fileSize - payload;
        return n <= 0 ? 0 : n & -(long) sectorSize;
    }

    @Override
    public void describeImage(io.diskstack.core.info.ImageFacts facts) throws IOException {
        LuksInfo.describe(LuksHeader.read(headerDevice, new ImageRef(nodeName(), filename())), facts);
    }

    @Override
    public int requestAlignment() {
        return sectorSize;
    }

    /** A payload that runs to the end of its file grows with it (qcow2 over luks over a file allocates). */
    @Override
    public boolean isGrowable() {
        return fixedSize < 0 && child().node().isGrowable();
    }

    /** FUA travels down with each encrypted write. */
    @Override
    public boolean supportsFua() {
        return true;
    }

    @Override
    public int clusterSize() {
        return sectorSize;
    }

    @Override
    public String details() {
        return description;
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        int start = dst.position();
        int len = dst.remaining();
        child().read(payload + offset, dst);
        ciphers.decrypt(dst, start, dst, start, len, ivTweak + offset / 512);
    }

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        int pos = src.position();
        int len = src.remaining();
        try (PooledBuffer pooled = BufferPool.acquire(Math.min(len, WRITE_CHUNK))) {
            ByteBuffer buf = pooled.buffer();
            for (int done = 0; done < len; ) {
                int n = Math.min(WRITE_CHUNK, len - done);
                ciphers.encrypt(src, pos + done, buf, 0, n, ivTweak + (offset + done) / 512);
                buf.clear().limit(n);
                child().write(payload + offset + done, buf, flags);
                done += n;
            }
        }
        src.position(src.limit());
    }

    /** Zeroes must be encrypted like any data: zeroes below would decrypt to noise. */
    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        if (RequestFlags.has(flags, RequestFlags.NO_FALLBACK)) {
            throw new BlockIOException(Errno.ENOTSUP, nodeName() + ": encrypted zeroes must be written as data");
        }
        int dataFlags = flags & ~(RequestFlags.MAY_UNMAP | RequestFlags.NO_FALLBACK);
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(length - done, WRITE_CHUNK);
            write(offset + done, BufferPool.zeroes(n), dataFlags);
            done += n;
        }
    }

    @Override
    protected void truncate(long size) throws IOException {
        if (fixedSize >= 0) {
            throw new BlockIOException(Errno.ENOTSUP, nodeName() + ": the LUKS2 segment has a fixed size");
        }
        if (size % sectorSize != 0) {
            throw new BlockIOException(Errno.EINVAL, nodeName() + ": size " + size
                    + " is not a multiple of the " + sectorSize + "-byte sector");
        }
        child().truncate(payload + size);
    }

    @Override
    protected void close() {
        ciphers.close();
    }

    @Override
    public Map<String, ControlFile> controlFiles() {
        return keyControl.files();
    }

    /** Fails a key edit on a read-only node. */
    void checkWritable() throws BlockIOException {
        if (isReadOnly()) {
            throw new BlockIOException(Errno.EROFS, "node '" + nodeName() + "' is read-only");
        }
    }

    static void wipe(byte[] b) {
        if (b != null) {
            Arrays.fill(b, (byte) 0);
        }
    }
}
