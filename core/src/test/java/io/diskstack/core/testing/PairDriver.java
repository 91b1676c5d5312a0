package io.diskstack.core.testing;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.EnumSet;

/**
 * A test-only node shaped like a dedup node: {@code {"driver": "pair", "metadata": …, "data": …}}
 * keeps its data in {@code data} and, for each 4 KiB block written, a one-byte "written" mark in
 * {@code metadata}, so the two children only make sense together: a snapshot must catch both at
 * the same instant. It declares that shape ({@link Passage#FAN_OUT}) and nothing else, so core
 * must handle snapshots, views and jobs above it from the declaration alone.
 */
public final class PairDriver implements BlockDriver {
    @Override
    public String name() {
        return "pair";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FORMAT;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        BlockChild metadata = ctx.openChild("metadata", EnumSet.of(ChildRole.METADATA));
        BlockChild data = ctx.openChild("data", EnumSet.of(ChildRole.DATA));
        if (metadata.size() * 4096 < data.size()) {
            throw ctx.options().error("metadata", "is too small for the data child");
        }
        return new PairNode(ctx, metadata, data);
    }

    /** Reads zeroes where the metadata says a block was never written. */
    static final class PairNode extends BlockNode {
        private final BlockChild metadata;
        private final BlockChild data;

        PairNode(NodeOpenContext ctx, BlockChild metadata, BlockChild data) {
            super(ctx);
            this.metadata = metadata;
            this.data = data;
        }

        @Override
        public long size() {
            return data.size();
        }

        @Override
        public int requestAlignment() {
            return 4096;
        }

        @Override
        public Passage passage() {
            return Passage.FAN_OUT;
        }

        @Override
        protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
            int blocks = dst.remaining() / 4096;
            ByteBuffer marks = ByteBuffer.allocate(blocks);
            metadata.read(offset / 4096, marks);
            int base = dst.position();
            data.read(offset, dst.duplicate());
            for (int i = 0; i < blocks; i++) {
                if (marks.get(i) == 0) {
                    for (int j = 0; j < 4096; j++) {
                        dst.put(base + i * 4096 + j, (byte) 0);
                    }
                }
            }
            dst.position(dst.limit());
        }

        @Override
        protected void write(long offset, ByteBuffer src, int flags) throws IOException {
            int blocks = src.remaining() / 4096;
            data.write(offset, src, flags);
            ByteBuffer marks = ByteBuffer.allocate(blocks);
            for (int i = 0; i < blocks; i++) {
                marks.put(i, (byte) 1);
            }
            metadata.write(offset / 4096, marks, flags);
        }

        @Override
        public String filename() {
            return data.node().filename();
        }
    }
}
