package io.diskstack.core.testing;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A test-only protocol driver: {@code {"driver": "memory", "size": "4M", "align": 512,
 * "mem-align": 4096}}. It checks that the core hands it only aligned requests, and records the
 * order in which nodes close.
 */
public final class MemoryDriver implements BlockDriver {
    /** Node-names in the order their nodes closed. */
    public static final List<String> CLOSED = new CopyOnWriteArrayList<>();

    @Override
    public String name() {
        return "memory";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.PROTOCOL;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) {
        NodeOptions o = ctx.options();
        long size = o.optSize("size", 4 << 20);
        int align = (int) o.optLong("align", 1, 1, 1 << 20);
        int memAlign = (int) o.optLong("mem-align", 1, 1, 4096);
        return new MemoryNode(ctx, Math.toIntExact(size), align, memAlign);
    }

    static final class MemoryNode extends BlockNode {
        private final byte[] data;
        private final int align;
        private final int memAlign;

        MemoryNode(NodeOpenContext ctx, int size, int align, int memAlign) {
            super(ctx);
            this.data = new byte[size];
            this.align = align;
            this.memAlign = memAlign;
        }

        @Override
        public long size() {
            return data.length;
        }

        @Override
        public int requestAlignment() {
            return align;
        }

        @Override
        public int memoryAlignment() {
            return memAlign;
        }

        @Override
        public String filename() {
            return "memory:" + nodeName();
        }

        @Override
        protected void read(long offset, ByteBuffer dst, int flags) {
            check(offset, dst);
            synchronized (data) {
                int n = dst.remaining();
                dst.put(data, (int) offset, n);
            }
        }

        @Override
        protected void write(long offset, ByteBuffer src, int flags) {
            check(offset, src);
            synchronized (data) {
                src.get(data, (int) offset, src.remaining());
            }
        }

        private void check(long offset, ByteBuffer buf) {
            if (offset % align != 0 || buf.remaining() % align != 0) {
                throw new AssertionError(nodeName() + ": unaligned request reached the driver: offset " + offset
                        + " length " + buf.remaining() + " align " + align);
            }
            if (memAlign > 1 && (!buf.isDirect() || buf.alignmentOffset(buf.position(), memAlign) != 0)) {
                throw new AssertionError(nodeName() + ": buffer not aligned to " + memAlign);
            }
            if (offset + buf.remaining() > data.length) {
                throw new AssertionError(nodeName() + ": request past the end reached the driver");
            }
        }

        @Override
        protected void close() {
            CLOSED.add(nodeName());
        }
    }
}
