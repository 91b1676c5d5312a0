package io.diskstack.filters.luks;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.TransformNode;
import io.diskstack.core.info.ImageFacts;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A LUKS volume opened without its key, only to be described ({@code diskstack info}, which like
 * {@code qemu-img info} needs no key): it knows its header and size and refuses all I/O.
 */
final class LuksHeaderNode extends TransformNode {
    private final LuksHeader header;

    LuksHeaderNode(NodeOpenContext ctx, BlockChild data, LuksHeader header) {
        super(ctx, data);
        this.header = header;
    }

    @Override
    public long size() {
        return LuksNode.payloadSize(child().size(), header.payloadOffset(), header.fixedSize(), header.sectorSize());
    }

    @Override
    public void describeImage(ImageFacts facts) {
        LuksInfo.describe(header, facts);
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        throw noKey();
    }

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        throw noKey();
    }

    private BlockIOException noKey() {
        return new BlockIOException(Errno.ENOTSUP, nodeName() + ": opened without its key, only to be described");
    }
}
