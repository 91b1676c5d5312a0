package io.diskstack.core;

/**
 * A node over one child whose bytes it transforms (luks: ciphertext at other offsets): unlike a
 * {@link FilterNode} it forwards no I/O, because the child's bytes are not this node's. It stays
 * above the images, so snapshots and jobs {@linkplain Passage#PASS pass} it to its child, and its
 * file name is its child's. A subclass implements the I/O; flushes reach the child through the
 * core, as for every node.
 */
public abstract class TransformNode extends BlockNode {
    private final BlockChild child;

    protected TransformNode(NodeOpenContext ctx, BlockChild child) {
        super(ctx);
        this.child = child;
    }

    /** The edge to the transformed child. */
    public final BlockChild child() {
        return child;
    }

    @Override
    public Passage passage() {
        return Passage.PASS;
    }

    @Override
    public String filename() {
        return child.node().filename();
    }
}
