package io.diskstack.filters.cor;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.ChildRole;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.BitSet;

/**
 * A test-only format with backing-file semantics, standing in for qcow2 until it lands:
 * {@code {"driver": "test-overlay", "file": DATA, "backing": BASE, "cluster-size": 65536,
 * "allocation-unit": 2048}}. Data lives at the same offset in {@code file}; which units are
 * allocated is kept in memory. A unit is the cluster unless {@code allocation-unit} makes it
 * smaller (like qcow2's subclusters). Unallocated units read from the backing node (zeroes past
 * its end).
 */
public final class TestOverlayDriver implements BlockDriver {
    @Override
    public String name() {
        return "test-overlay";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FORMAT;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        int cluster = (int) o.optLong("cluster-size", 65536, 512, 1 << 21);
        int unit = (int) o.optLong("allocation-unit", cluster, 512, cluster);
        BlockChild file = ctx.openChild("file", ChildRole.image());
        BlockChild backing = ctx.openOptionalChild("backing", ChildRole.cow());
        return new Overlay(ctx, file, backing, unit, cluster);
    }

    static final class Overlay extends BlockNode {
        private final BlockChild file;
        private final BlockChild backing;
        /** The allocation unit; everything below counts in these. */
        private final int cluster;
        private final int clusterSize;
        private final BitSet allocated = new BitSet();

        Overlay(NodeOpenContext ctx, BlockChild file, BlockChild backing, int unit, int clusterSize) {
            super(ctx);
            this.file = file;
            this.backing = backing;
            this.cluster = unit;
            this.clusterSize = clusterSize;
        }

        @Override
        public long size() {
            return file.size();
        }

        @Override
        public int requestAlignment() {
            return cluster;
        }

        @Override
        public int clusterSize() {
            return clusterSize;
        }

        /** True if the unit holding {@code offset} is allocated here. */
        synchronized boolean isAllocated(long offset) {
            return allocated.get((int) (offset / cluster));
        }

        synchronized int allocatedClusters() {
            return allocated.cardinality();
        }

        @Override
        protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
            int base = dst.position();
            long end = offset + dst.remaining();
            for (long pos = offset; pos < end; ) {
                boolean here = isAllocated(pos);
                long runEnd = pos + cluster;
                while (runEnd < end && isAllocated(runEnd) == here) {
                    runEnd += cluster;
                }
                runEnd = Math.min(runEnd, end);
                ByteBuffer part = dst.slice(base + (int) (pos - offset), (int) (runEnd - pos));
                if (here) {
                    file.read(pos, part);
                } else {
                    readBacking(pos, part);
                }
                pos = runEnd;
            }
            dst.position(dst.limit());
        }

        private void readBacking(long pos, ByteBuffer part) throws IOException {
            long backingSize = backing == null ? 0 : backing.size();
            int inBacking = (int) Math.max(0, Math.min(part.remaining(), backingSize - pos));
            if (inBacking > 0) {
                backing.read(pos, part.slice(0, inBacking));
            }
            for (int i = inBacking; i < part.limit(); i++) {
                part.put(i, (byte) 0);
            }
        }

        @Override
        protected void write(long offset, ByteBuffer src, int flags) throws IOException {
            long end = offset + src.remaining();
            file.write(offset, src, flags);
            synchronized (this) {
                allocated.set((int) (offset / cluster), (int) ((end + cluster - 1) / cluster));
            }
        }

        @Override
        protected BlockStatus blockStatus(long offset, long length) {
            boolean here = isAllocated(offset);
            long end = offset + length;
            long runEnd = (offset / cluster + 1) * cluster;
            while (runEnd < end && isAllocated(runEnd) == here) {
                runEnd += cluster;
            }
            long n = Math.min(runEnd, end) - offset;
            if (here) {
                return BlockStatus.of(n, BlockStatus.DATA | BlockStatus.ALLOCATED);
            }
            return BlockStatus.of(n, backing == null ? BlockStatus.ZERO : 0);
        }

        @Override
        public String details() {
            return "cluster " + clusterSize + ", unit " + cluster;
        }
    }
}
