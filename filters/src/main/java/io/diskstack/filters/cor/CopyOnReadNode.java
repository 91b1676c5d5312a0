package io.diskstack.filters.cor;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.BlockStatusQuery;
import io.diskstack.core.FilterNode;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.RequestFlags;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The copy-on-read filter. Reads go down with {@link RequestFlags#COPY_ON_READ}; the core
 * populates the top image (serialised against writes to the same clusters). With a bottom node,
 * only the ranges whose data comes from the chain between the top image and the bottom get
 * the flag.
 */
final class CopyOnReadNode extends FilterNode {
    private final BlockNode bottom;

    CopyOnReadNode(NodeOpenContext ctx, BlockChild file, BlockNode bottom) {
        super(ctx, file);
        this.bottom = bottom;
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        if (bottom == null) {
            filtered().read(offset, dst, flags | RequestFlags.COPY_ON_READ);
            return;
        }
        int base = dst.position();
        long end = offset + dst.remaining();
        for (long pos = offset; pos < end; ) {
            long n = end - pos;
            int chunkFlags = flags;
            BlockStatus own = filtered().blockStatus(pos, n);
            n = Math.min(n, own.length());
            if (!own.isAllocated()) {
                BlockChild backing = GraphWalk.skipFilters(filtered().node()).cowChild();
                if (backing != null && pos < backing.size()) {
                    BlockStatus below = BlockStatusQuery.above(backing.node(), bottom, pos,
                            Math.min(n, backing.size() - pos));
                    n = Math.min(n, below.length());
                    if (below.node() != null) {
                        chunkFlags |= RequestFlags.COPY_ON_READ;
                    }
                }
            }
            filtered().read(pos, dst.slice(base + (int) (pos - offset), (int) n), chunkFlags);
            pos += n;
        }
        dst.position(dst.limit());
    }

    @Override
    public String details() {
        return bottom == null ? "" : "bottom " + bottom.nodeName();
    }
}
