package io.diskstack.core;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A node over one filtered child that forwards everything it does not override (like Lucene's
 * FilterDirectory). A filter overrides only what it changes; a reflection test checks that this
 * class forwards every overridable method of {@link BlockNode}, so a new one is never skipped.
 */
public abstract class FilterNode extends BlockNode {
    private final BlockChild filtered;

    /** Opens the filtered child from the {@code file} option. */
    protected FilterNode(NodeOpenContext ctx) throws IOException {
        this(ctx, ctx.openChild("file", ChildRole.filtered()));
    }

    protected FilterNode(NodeOpenContext ctx, BlockChild filtered) {
        super(ctx);
        this.filtered = filtered;
    }

    /** The edge to the filtered child. */
    public final BlockChild filtered() {
        return filtered;
    }

    @Override
    public long size() {
        return filtered.size();
    }

    /** Walks pass a filter to its child. */
    @Override
    public Passage passage() {
        return Passage.PASS;
    }

    /** A filter takes on its child what its own users take, and shares what they share. */
    @Override
    protected Permissions childPermissions(BlockChild child, Permissions users) {
        return users;
    }

    /** The image a filter shows is its child's. */
    @Override
    public BackingImage backingImage() {
        return filtered.node().backingImage();
    }

    @Override
    public int requestAlignment() {
        return 1;
    }

    @Override
    public int memoryAlignment() {
        return 1;
    }

    @Override
    public int clusterSize() {
        return filtered.node().clusterSize();
    }

    @Override
    public boolean supportsFua() {
        return true;
    }

    /** A pass-through filter over a host file grows with it: qcow2 over throttle over file allocates. */
    @Override
    public boolean isGrowable() {
        return filtered.node().isGrowable();
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        filtered.read(offset, dst, flags);
    }

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        filtered.write(offset, src, flags);
    }

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        filtered.writeZeroes(offset, length, flags);
    }

    @Override
    protected void discard(long offset, long length) throws IOException {
        filtered.discard(offset, length);
    }

    @Override
    protected void flush() throws IOException {
        // Nothing cached here; the core flushes the child after this.
    }

    @Override
    protected boolean flushesChildren() {
        return false;
    }

    /** Nothing of its own to give up: the walk that calls this goes on to the child. */
    @Override
    protected void releaseWritePermission() {}

    /** No: the one child orders its own requests if it needs to. */
    /** A filter has no run-time state to record. */
    @Override
    public java.util.Map<String, Object> runtimeOptions() {
        return java.util.Map.of();
    }

    /** A filter keeps nothing a reopen would lose. */
    @Override
    public boolean keepsRuntimeState() {
        return false;
    }

    /** A filter's one child is fixed. */
    @Override
    public ChildList growableChildren() {
        return null;
    }

    @Override
    protected void childAdded(BlockChild edge) throws IOException {
        super.childAdded(edge);
    }

    @Override
    protected void childRemoved(BlockChild edge) throws IOException {
        super.childRemoved(edge);
    }

    /** A filter shows its child's bytes: a replaced child is what the filter shows from then on. */
    @Override
    protected boolean resyncsReplacedChild(BlockChild edge) {
        return false;
    }

    @Override
    protected void childReplaced(BlockChild edge) {}

    /** A filter has no backing file of its own. */
    @Override
    protected void changeBackingFile(BackingImage image, BlockChild edge) throws IOException {
        super.changeBackingFile(image, edge);
    }

    @Override
    protected boolean serialisesOverlappingRequests() {
        return false;
    }

    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        return filtered.blockStatus(offset, length);
    }

    @Override
    protected void truncate(long size) throws IOException {
        filtered.truncate(size);
    }

    @Override
    protected void drainBegin() {
        // The core tells every node below a draining backend, the child too.
    }

    @Override
    protected void drainEnd() {
        // As drainBegin.
    }

    @Override
    protected void close() throws IOException {
        // The graph closes the child.
    }

    @Override
    protected void invalidateCache() {
        // Nothing cached; the core tells the child itself.
    }

    @Override
    public String filename() {
        return filtered.node().filename();
    }

    @Override
    public String details() {
        return "";
    }

    /** A plain filter has no image of its own to describe (qemu-img shows the filter's driver and sizes). */
    @Override
    public void describeImage(io.diskstack.core.info.ImageFacts facts) {}

    /** The child's storage is the filter's. */
    @Override
    public long allocatedSize() throws IOException {
        return filtered.node().allocatedSize();
    }

    @Override
    public java.util.Map<String, ? extends Number> stats() {
        return java.util.Map.of();
    }
}
