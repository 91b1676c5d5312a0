package io.diskstack.core;

import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.buffer.Zeroes;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Copy-on-read population, done once here for every driver (QEMU does it in the generic read
 * path too): a read with {@link RequestFlags#COPY_ON_READ} that reaches a node copies the
 * clusters the node does not hold itself (they come from its backing chain) into the node.
 *
 * <p>The copy is a serialising request over whole clusters, so a guest write to those clusters
 * either finishes before it (and the copy then sees the range allocated and skips it) or waits
 * for it (and overwrites the copy): a stale copy never lands over newer data.
 */
final class CopyOnRead {
    private static final int MAX_CHUNK = 1 << 20;

    private CopyOnRead() {}

    static void read(BlockNode node, long offset, ByteBuffer dst) throws IOException {
        int base = dst.position();
        int limit = dst.limit();
        long end = offset + dst.remaining();
        long pos = offset;
        while (pos < end) {
            BlockStatus status = node.blockStatus(pos, end - pos);
            long n = Math.min(status.length(), end - pos);
            ByteBuffer part = dst.slice(base + (int) (pos - offset), (int) n);
            if (status.isAllocated()) {
                RequestPath.readUnchecked(node, pos, part, 0);
            } else {
                populate(node, pos, part);
            }
            pos += n;
        }
        dst.position(limit);
    }

    /** Reads [pos, pos+part.remaining()) into part, copying whole clusters into the node. */
    private static void populate(BlockNode node, long pos, ByteBuffer part) throws IOException {
        long end = pos + part.remaining();
        int cluster = Math.max(node.clusterSize(), node.requestAlignment());
        long size = node.size();
        int base = part.position();
        long chunkStart = RequestPath.alignDown(pos, cluster);
        if (end > size) {
            // Past the node's end (a growable node) there is nothing to copy.
            RequestPath.readUnchecked(node, pos, part, 0);
            return;
        }
        while (chunkStart < end) {
            long chunkEnd = Math.min(Math.min(RequestPath.alignUp(end, cluster), chunkStart + Math.max(MAX_CHUNK, cluster)),
                    size);
            long from = Math.max(pos, chunkStart);
            long to = Math.min(end, chunkEnd);
            ByteBuffer wanted = part.slice(base + (int) (from - pos), (int) (to - from));
            if (!RequestPath.isAligned(chunkStart, chunkEnd - chunkStart, node.requestAlignment())) {
                RequestPath.readUnchecked(node, from, wanted, 0);
            } else {
                copyChunk(node, chunkStart, chunkEnd, from, wanted);
            }
            chunkStart = chunkEnd;
        }
    }

    /**
     * Copies the unallocated parts of [start, end) into the node and fills {@code wanted} (the
     * bytes from {@code from}). Inside the serialising request nothing else writes these bytes,
     * so what is read here is current and the copy cannot land over a newer write. The chunk may
     * be partly allocated (subclusters, or a write that got here first): only the rest is copied,
     * as QEMU does.
     */
    private static void copyChunk(BlockNode node, long start, long end, long from, ByteBuffer wanted)
            throws IOException {
        RequestTracker.Tracked tracked = node.tracker.begin(start, end, true);
        try (PooledBuffer bounce = BufferPool.acquire(Math.toIntExact(end - start))) {
            ByteBuffer b = bounce.buffer();
            node.read(start, b, 0);
            int align = node.requestAlignment();
            int memAlign = node.memoryAlignment();
            for (long pos = start; pos < end; ) {
                BlockStatus status = node.blockStatus(pos, end - pos);
                long n = Math.min(status.length(), end - pos);
                int at = (int) (pos - start);
                if (!status.isAllocated() && RequestPath.isAligned(pos, n, align)
                        && (memAlign <= 1 || at % memAlign == 0)) {
                    ByteBuffer part = b.slice(at, (int) n);
                    if (Zeroes.isAllZero(part)) {
                        node.writeZeroes(pos, n, RequestFlags.CONTENT_UNCHANGED);
                    } else {
                        node.write(pos, part, RequestFlags.CONTENT_UNCHANGED);
                    }
                }
                pos += n;
            }
            wanted.put(b.slice((int) (from - start), wanted.remaining()));
        } finally {
            node.tracker.end(tracked);
        }
    }
}
