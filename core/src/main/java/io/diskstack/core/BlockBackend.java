package io.diskstack.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The named handle an export uses (QEMU's BlockBackend): a root edge into the graph, bounds
 * checks against the virtual size, the read-only state, and in-flight tracking for drain.
 */
public final class BlockBackend {
    private final String name;
    private final BlockChild root;
    private final boolean writable;
    private final InFlight inFlight = new InFlight();
    private final List<WriteInterceptor> interceptors = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final BackendStats stats = new BackendStats();
    private volatile boolean removed;

    BlockBackend(String name, BlockChild root, boolean writable) {
        this.name = name;
        this.root = root;
        this.writable = writable;
    }

    public String name() {
        return name;
    }

    public boolean isWritable() {
        return writable;
    }

    /** The node the backend's root edge points at now. */
    public BlockNode rootNode() {
        return root.node();
    }

    BlockChild rootEdge() {
        return root;
    }

    /** True if {@code edge} is this backend's root edge (for views of the graph). */
    public boolean isRoot(BlockChild edge) {
        return edge == root;
    }

    public long size() {
        return root.size();
    }

    public void read(long offset, ByteBuffer dst) throws IOException {
        int length = dst.remaining();
        long start = System.nanoTime();
        inFlight.enter();
        stats.begin();
        try {
            checkRange(offset, length, "read");
            root.read(offset, dst);
            stats.read(length);
        } catch (IOException | RuntimeException e) {
            stats.failed();
            throw e;
        } finally {
            stats.end();
            inFlight.exit();
            stats.timed(BackendStats.Op.READ, start);
        }
    }

    public void write(long offset, ByteBuffer src, int flags) throws IOException {
        int length = src.remaining();
        long start = System.nanoTime();
        inFlight.enter();
        stats.begin();
        try {
            checkWritable();
            checkRange(offset, length, "write");
            intercept(offset, length);
            root.write(offset, src, flags);
            stats.wrote(length);
        } catch (IOException | RuntimeException e) {
            stats.failed();
            throw e;
        } finally {
            stats.end();
            inFlight.exit();
            stats.timed(BackendStats.Op.WRITE, start);
        }
    }

    public void writeZeroes(long offset, long length, int flags) throws IOException {
        long start = System.nanoTime();
        inFlight.enter();
        try {
            checkWritable();
            checkRange(offset, length, "write-zeroes");
            intercept(offset, length);
            root.writeZeroes(offset, length, flags);
            if (RequestFlags.has(flags, RequestFlags.MAY_UNMAP)) {
                stats.discarded();
            }
        } catch (IOException | RuntimeException e) {
            stats.failed();
            throw e;
        } finally {
            inFlight.exit();
            stats.timed(BackendStats.Op.WRITE_ZEROES, start);
        }
    }

    public void discard(long offset, long length) throws IOException {
        long start = System.nanoTime();
        inFlight.enter();
        try {
            checkWritable();
            checkRange(offset, length, "discard");
            intercept(offset, length);
            root.discard(offset, length);
            stats.discarded();
        } catch (IOException | RuntimeException e) {
            stats.failed();
            throw e;
        } finally {
            inFlight.exit();
            stats.timed(BackendStats.Op.DISCARD, start);
        }
    }

    public void flush() throws IOException {
        long start = System.nanoTime();
        inFlight.enter();
        try {
            root.flush();
            stats.flushed();
        } catch (IOException | RuntimeException e) {
            stats.failed();
            throw e;
        } finally {
            inFlight.exit();
            stats.timed(BackendStats.Op.FLUSH, start);
        }
    }

    /**
     * Flushes the graph below the backend for a command (a snapshot), drained or not (a drain
     * would hold {@link #flush()} back), and not counted as the guest's flush in the stats: the
     * nodes above the snapshot points write what they cache (dedup's metadata) into the images,
     * so the images hold the disk.
     */
    public void flushForCommand() throws IOException {
        root.flush();
    }

    /**
     * Tells every node below the backend, children before parents, that the content of its
     * children may have changed without passing through it (a snapshot revert): see
     * {@link BlockNode#invalidateCache()}. Call it drained.
     */
    public void invalidateCachesDrained() throws IOException {
        List<BlockNode> nodes = nodesBelow(root.node());
        for (int i = nodes.size() - 1; i >= 0; i--) {
            BlockNode n = nodes.get(i);
            if (!n.closed) {
                n.invalidateCache();
            }
        }
    }

    /** The request counters, for {@code MNT/.control/DISK/stats}. */
    public BackendStats stats() {
        return stats;
    }

    public BlockStatus blockStatus(long offset, long length) throws IOException {
        inFlight.enter();
        try {
            checkRange(offset, Math.max(length, 1), "block-status");
            return BlockStatusQuery.above(root.node(), offset, length);
        } finally {
            inFlight.exit();
        }
    }

    /**
     * Sees every write, write-zeroes and discard of the disk before it happens (a backup's
     * copy-before-write): it may read what the disk shows now with the reader it is given, which
     * does not wait for a drain (the write that called it is in flight already).
     */
    public interface WriteInterceptor {
        void beforeWrite(long offset, long length, DiskReader current) throws IOException;
    }

    /** Reads what the disk shows. */
    public interface DiskReader {
        void read(long offset, ByteBuffer dst) throws IOException;
    }

    /** Adds an interceptor; call it drained, so that no write in flight escapes it. */
    public void addInterceptor(WriteInterceptor interceptor) {
        interceptors.add(interceptor);
    }

    public void removeInterceptor(WriteInterceptor interceptor) {
        interceptors.remove(interceptor);
    }

    private void intercept(long offset, long length) throws IOException {
        if (!interceptors.isEmpty() && length > 0) {
            for (WriteInterceptor i : interceptors) {
                i.beforeWrite(offset, length, (o, dst) -> root.read(o, dst));
            }
        }
    }

    /** Requests now inside the backend. */
    public int inFlightCount() {
        return inFlight.count();
    }

    /**
     * Waits for requests in flight and holds new ones until the returned drain is closed. Nodes
     * below are told first ({@link BlockNode#drainBegin()}), so one that holds requests back
     * (throttle) lets them go instead of making the drain wait for its limits. Drains nest and
     * may overlap from several threads: each one, when closed, ends exactly the nodes it told,
     * even if the graph changed in between, and closing it again does nothing.
     */
    public Drain drain() {
        List<BlockNode> below = nodesBelow(root.node());
        for (BlockNode n : below) {
            n.drainBegin();
        }
        inFlight.drain();
        return new Drain(below);
    }

    /** One drain of a backend in progress; close it to resume. */
    public final class Drain implements AutoCloseable {
        private final List<BlockNode> told;
        private final AtomicBoolean ended = new AtomicBoolean();

        private Drain(List<BlockNode> told) {
            this.told = told;
        }

        /** Lets requests in again and tells the nodes this drain told; once. */
        @Override
        public void close() {
            if (!ended.compareAndSet(false, true)) {
                return;
            }
            inFlight.resume();
            for (BlockNode n : told) {
                n.drainEnd();
            }
        }
    }

    /** The node and every node below it, each once, parents first. */
    private static List<BlockNode> nodesBelow(BlockNode top) {
        List<BlockNode> out = new ArrayList<>();
        Set<BlockNode> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Deque<BlockNode> todo = new ArrayDeque<>();
        todo.add(top);
        while (!todo.isEmpty()) {
            BlockNode n = todo.poll();
            if (seen.add(n)) {
                out.add(n);
                for (BlockChild c : n.children) {
                    todo.add(c.node());
                }
            }
        }
        return out;
    }

    private void checkWritable() throws BlockIOException {
        if (!writable) {
            throw new BlockIOException(Errno.EROFS, "export '" + name + "' is read-only");
        }
    }

    /** The export left the mount (block-export-del): its requests fail from now on. */
    void markRemoved() {
        removed = true;
    }

    private void checkRemoved() throws BlockIOException {
        if (removed) {
            throw new BlockIOException(Errno.ENODEV, "export '" + name + "' was removed");
        }
    }

    private void checkRange(long offset, long length, String what) throws BlockIOException {
        checkRemoved();
        long size = size();
        if (offset < 0 || length < 0 || offset > size - length) {
            throw new BlockIOException(what.equals("read") ? Errno.EINVAL : Errno.ENOSPC,
                    "export '" + name + "': " + what + " of [" + offset + ", +" + length
                            + ") goes past the end of the disk (" + size + " bytes)");
        }
    }

    @Override
    public String toString() {
        return "backend " + name + " -> " + root.node();
    }
}
