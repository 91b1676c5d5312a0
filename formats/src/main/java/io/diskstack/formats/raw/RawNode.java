package io.diskstack.formats.raw;

import io.diskstack.core.BackingImage;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.Permissions;
import java.io.IOException;
import java.nio.ByteBuffer;

/** The {@code raw} format: the bytes of its file child, optionally a window at {@code offset}. */
final class RawNode extends BlockNode {
    private final BlockChild file;
    private final long offset;
    private final long size;

    RawNode(NodeOpenContext ctx, BlockChild file, long offset, long size) {
        super(ctx);
        this.file = file;
        this.offset = offset;
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int clusterSize() {
        return file.node().clusterSize();
    }

    @Override
    public boolean supportsFua() {
        return true;
    }

    /**
     * Raw keeps no metadata: it takes on its file what its users take and shares what they share,
     * as QEMU's raw does, so two raw exports of one file work side by side.
     */
    @Override
    protected Permissions childPermissions(BlockChild child, Permissions users) {
        return users;
    }

    /** A window of its file ({@code offset}/{@code size}) is nothing a backing file name can say. */
    @Override
    public BackingImage backingImage() {
        return offset == 0 && size == file.size() ? super.backingImage() : null;
    }

    @Override
    public String details() {
        return offset == 0 ? "" : "offset " + offset;
    }

    @Override
    protected void read(long pos, ByteBuffer dst, int flags) throws IOException {
        file.read(offset + pos, dst);
    }

    @Override
    protected void write(long pos, ByteBuffer src, int flags) throws IOException {
        file.write(offset + pos, src, flags);
    }

    @Override
    protected void writeZeroes(long pos, long length, int flags) throws IOException {
        file.writeZeroes(offset + pos, length, flags);
    }

    @Override
    protected void discard(long pos, long length) throws IOException {
        file.discard(offset + pos, length);
    }

    @Override
    protected BlockStatus blockStatus(long pos, long length) throws IOException {
        BlockStatus below = file.blockStatus(offset + pos, length);
        int flags = (below.flags() & (BlockStatus.DATA | BlockStatus.ZERO | BlockStatus.OFFSET_VALID))
                | BlockStatus.ALLOCATED;
        return new BlockStatus(below.length(), flags, null, below.mappedOffset());
    }
}
