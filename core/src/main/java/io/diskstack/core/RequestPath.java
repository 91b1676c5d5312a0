package io.diskstack.core;

import io.diskstack.core.buffer.BufferPool;
import io.diskstack.core.buffer.PooledBuffer;
import io.diskstack.core.buffer.Zeroes;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The generic part of every request, between a {@link BlockChild} and the driver: bounds,
 * read-only, alignment padding with read-modify-write, serialisation of overlapping
 * read-modify-write (and of all overlapping requests where a node asks for it), bounce buffers for memory alignment, discard and detect-zeroes settings,
 * FUA emulation, copy-on-read, and flushing children after their parent.
 *
 * <p>On return, the caller's buffer has its position at its limit.
 */
final class RequestPath {
    private RequestPath() {}

    static void read(BlockNode node, long offset, ByteBuffer dst, int flags) throws IOException {
        int length = dst.remaining();
        if (length == 0) {
            return;
        }
        checkOpen(node);
        checkRange(node, offset, length, "read");
        if (RequestFlags.has(flags, RequestFlags.COPY_ON_READ) && !node.isReadOnly() && node.filteredChild() == null) {
            // Copy-on-read happens at the node that holds the data, under that node's request
            // tracker; pass-through filters (throttle, blkdebug) hand the flag on with the read.
            CopyOnRead.read(node, offset, dst);
            return;
        }
        readUnchecked(node, offset, dst, flags);
    }

    /**
     * A read that has passed the checks: pads and bounces as the driver needs, and waits for
     * overlapping writes on a node that {@linkplain BlockNode#serialisesOverlappingRequests()
     * serialises them}.
     */
    static void readUnchecked(BlockNode node, long offset, ByteBuffer dst, int flags) throws IOException {
        if (!node.serialisesOverlappingRequests()) {
            readAligned(node, offset, dst, flags);
            return;
        }
        int align = node.requestAlignment();
        RequestTracker.Tracked tracked = node.tracker.begin(alignDown(offset, align),
                alignUp(offset + dst.remaining(), align), false);
        try {
            readAligned(node, offset, dst, flags);
        } finally {
            node.tracker.end(tracked);
        }
    }

    private static void readAligned(BlockNode node, long offset, ByteBuffer dst, int flags) throws IOException {
        int length = dst.remaining();
        int limit = dst.limit();
        int align = node.requestAlignment();
        if (isAligned(offset, length, align) && memoryFits(node, dst)) {
            node.read(offset, dst, flags);
            dst.position(limit);
            return;
        }
        long start = alignDown(offset, align);
        long end = alignUp(offset + length, align);
        try (PooledBuffer bounce = BufferPool.acquire(Math.toIntExact(end - start))) {
            ByteBuffer b = bounce.buffer();
            node.read(start, b, flags);
            b.limit((int) (offset - start) + length).position((int) (offset - start));
            dst.put(b);
        }
        dst.position(limit);
    }

    static void write(BlockNode node, long offset, ByteBuffer src, int flags) throws IOException {
        int length = src.remaining();
        if (length == 0) {
            return;
        }
        checkOpen(node);
        checkWritable(node);
        checkRange(node, offset, length, "write");
        BlockNode.DetectZeroes detect = node.settings().detectZeroes();
        if (detect != BlockNode.DetectZeroes.OFF && !RequestFlags.has(flags, RequestFlags.CONTENT_UNCHANGED)
                && Zeroes.isAllZero(src)) {
            int zeroFlags = flags;
            if (detect == BlockNode.DetectZeroes.UNMAP) {
                zeroFlags |= RequestFlags.MAY_UNMAP;
            }
            try {
                writeZeroesChecked(node, offset, length, zeroFlags);
            } finally {
                markDirty(node, offset, length);
            }
            src.position(src.limit());
            return;
        }
        boolean emulateFua = RequestFlags.has(flags, RequestFlags.FUA) && !node.supportsFua();
        try {
            writeUnchecked(node, offset, src, emulateFua ? flags & ~RequestFlags.FUA : flags);
        } finally {
            markDirty(node, offset, length);
        }
        if (emulateFua) {
            flush(node);
        }
    }

    /** Tells the node's dirty bitmaps (a job copying it) that these bytes may have changed. */
    private static void markDirty(BlockNode node, long offset, long length) {
        if (!node.dirtyBitmaps.isEmpty()) {
            for (DirtyBitmap b : node.dirtyBitmaps) {
                b.mark(offset, length);
            }
        }
    }

    private static void writeUnchecked(BlockNode node, long offset, ByteBuffer src, int flags) throws IOException {
        int length = src.remaining();
        int limit = src.limit();
        int align = node.requestAlignment();
        boolean aligned = isAligned(offset, length, align);
        long start = alignDown(offset, align);
        long end = alignUp(offset + length, align);
        RequestTracker.Tracked tracked = node.tracker.begin(start, end,
                !aligned || node.serialisesOverlappingRequests());
        try {
            if (aligned && memoryFits(node, src)) {
                node.write(offset, src, flags);
            } else {
                writePadded(node, start, end, offset, src, flags);
            }
        } finally {
            node.tracker.end(tracked);
        }
        src.position(limit);
    }

    /** Read-modify-write of the aligned range [start, end) around [offset, offset+src.remaining()). */
    private static void writePadded(BlockNode node, long start, long end, long offset, ByteBuffer src, int flags)
            throws IOException {
        int align = node.requestAlignment();
        int size = Math.toIntExact(end - start);
        long dataEnd = offset + src.remaining();
        try (PooledBuffer bounce = BufferPool.acquire(size)) {
            ByteBuffer b = bounce.buffer();
            if (offset != start) {
                node.read(start, b.duplicate().limit(align), 0);
            }
            if (dataEnd != end && (end - align > start || offset == start)) {
                readBlockInto(node, end - align, b, size - align, align);
            }
            b.position((int) (offset - start));
            b.put(src);
            b.clear().limit(size);
            node.write(start, b, flags);
        }
    }

    /** Reads one aligned block into b at {@code at}, bouncing if that spot breaks memory alignment. */
    private static void readBlockInto(BlockNode node, long offset, ByteBuffer b, int at, int align)
            throws IOException {
        int memAlign = node.memoryAlignment();
        if (memAlign <= 1 || at % memAlign == 0) {
            node.read(offset, b.duplicate().position(at).limit(at + align), 0);
            return;
        }
        try (PooledBuffer block = BufferPool.acquire(align)) {
            node.read(offset, block.buffer(), 0);
            b.put(at, block.buffer().flip(), 0, align);
        }
    }

    static void writeZeroes(BlockNode node, long offset, long length, int flags) throws IOException {
        if (length == 0) {
            return;
        }
        checkOpen(node);
        checkWritable(node);
        checkRange(node, offset, length, "write-zeroes");
        try {
            writeZeroesChecked(node, offset, length, flags);
        } finally {
            markDirty(node, offset, length);
        }
    }

    /**
     * Zeroes a checked range: padding at unaligned ends written as data, the rest as write-zeroes.
     * FUA on a node without FUA support becomes one flush of the node afterwards, as for writes
     * (also when detect-zeroes turned a FUA write into this).
     */
    private static void writeZeroesChecked(BlockNode node, long offset, long length, int flags) throws IOException {
        if (RequestFlags.has(flags, RequestFlags.FUA) && !node.supportsFua()) {
            writeZeroesAligned(node, offset, length, flags & ~RequestFlags.FUA);
            flush(node);
        } else {
            writeZeroesAligned(node, offset, length, flags);
        }
    }

    private static void writeZeroesAligned(BlockNode node, long offset, long length, int flags) throws IOException {
        if (node.settings().discard() == BlockNode.Discard.IGNORE) {
            flags &= ~RequestFlags.MAY_UNMAP;
        }
        int align = node.requestAlignment();
        long end = offset + length;
        long alignedStart = Math.min(alignUp(offset, align), end);
        long alignedEnd = Math.max(alignDown(end, align), alignedStart);
        int dataFlags = flags & ~(RequestFlags.MAY_UNMAP | RequestFlags.NO_FALLBACK);
        if (offset < alignedStart) {
            writeUnchecked(node, offset, BufferPool.zeroes((int) (alignedStart - offset)), dataFlags);
        }
        if (alignedStart < alignedEnd) {
            RequestTracker.Tracked tracked = node.tracker.begin(alignedStart, alignedEnd,
                    node.serialisesOverlappingRequests());
            try {
                node.writeZeroes(alignedStart, alignedEnd - alignedStart, flags);
            } finally {
                node.tracker.end(tracked);
            }
        }
        if (alignedEnd < end && alignedEnd >= alignedStart && alignedEnd >= offset) {
            writeUnchecked(node, alignedEnd, BufferPool.zeroes((int) (end - alignedEnd)), dataFlags);
        }
    }

    static void discard(BlockNode node, long offset, long length) throws IOException {
        if (length == 0) {
            return;
        }
        checkOpen(node);
        checkWritable(node);
        checkRange(node, offset, length, "discard");
        if (node.settings().discard() == BlockNode.Discard.IGNORE) {
            return;
        }
        int align = Math.max(node.requestAlignment(), 1);
        long start = alignUp(offset, align);
        long end = alignDown(offset + length, align);
        if (start >= end) {
            return;
        }
        RequestTracker.Tracked tracked = node.tracker.begin(start, end, node.serialisesOverlappingRequests());
        try {
            node.discard(start, end - start);
        } finally {
            node.tracker.end(tracked);
            markDirty(node, start, end - start);
        }
    }

    /**
     * Flushes the node's own caches, then its children: data reaches disk bottom-up. A node with
     * {@code cache.no-flush} still writes its caches down (QEMU's flush-to-OS); only the sync to
     * disk is skipped, by the protocol driver ({@link BlockNode#skipsDiskSync()}).
     */
    static void flush(BlockNode node) throws IOException {
        checkOpen(node);
        if (node.isReadOnly()) {
            return;
        }
        node.flush();
        if (node.flushesChildren()) {
            return;
        }
        for (BlockChild child : node.children) {
            flush(child.node());
        }
    }

    static void truncate(BlockNode node, long size) throws IOException {
        checkOpen(node);
        checkWritable(node);
        if (size < 0) {
            throw new BlockIOException(Errno.EINVAL, node.nodeName() + ": cannot resize to " + size + " bytes");
        }
        RequestTracker.Tracked tracked = node.tracker.begin(Math.min(size, node.size()), Long.MAX_VALUE, true);
        try {
            node.truncate(size);
        } finally {
            node.tracker.end(tracked);
        }
    }

    static BlockStatus blockStatus(BlockNode node, long offset, long length) throws IOException {
        checkOpen(node);
        if (offset < 0 || length <= 0) {
            throw new BlockIOException(Errno.EINVAL,
                    node.nodeName() + ": block status of [" + offset + ", +" + length + ") is not a range");
        }
        long size = node.size();
        if (!node.isGrowable()) {
            if (offset >= size) {
                throw new BlockIOException(Errno.EINVAL,
                        node.nodeName() + ": block status at " + offset + " is past the end (" + size + ")");
            }
            length = Math.min(length, size - offset);
        }
        BlockStatus status = node.blockStatus(offset, length);
        if (status.length() > length) {
            status = status.withLength(length);
        }
        return status;
    }

    // ---- checks ----

    static void checkOpen(BlockNode node) throws BlockIOException {
        if (node.closed) {
            throw new BlockIOException(Errno.ENODEV, "node '" + node.nodeName() + "' is closed");
        }
    }

    private static void checkWritable(BlockNode node) throws BlockIOException {
        if (node.isReadOnly()) {
            throw new BlockIOException(Errno.EROFS, "node '" + node.nodeName() + "' is read-only");
        }
    }

    private static void checkRange(BlockNode node, long offset, long length, String what) throws BlockIOException {
        if (offset < 0 || length < 0 || offset + length < 0) {
            throw new BlockIOException(Errno.EINVAL,
                    node.nodeName() + ": " + what + " of [" + offset + ", +" + length + ") is not a range");
        }
        if (!node.isGrowable() && offset + length > node.size()) {
            throw new BlockIOException(Errno.EINVAL, node.nodeName() + ": " + what + " of [" + offset + ", +"
                    + length + ") goes past the end of the node (" + node.size() + " bytes)");
        }
    }

    // ---- arithmetic ----

    static boolean isAligned(long offset, long length, int align) {
        return ((offset | length) & (align - 1)) == 0;
    }

    static long alignDown(long value, int align) {
        return value & -(long) align;
    }

    static long alignUp(long value, int align) {
        return (value + align - 1) & -(long) align;
    }

    private static boolean memoryFits(BlockNode node, ByteBuffer buf) {
        int memAlign = node.memoryAlignment();
        return memAlign <= 1 || (buf.isDirect() && buf.alignmentOffset(buf.position(), memAlign) == 0);
    }
}
