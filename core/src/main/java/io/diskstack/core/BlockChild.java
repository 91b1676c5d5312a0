package io.diskstack.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An edge from a parent to a child node (QEMU's BdrvChild), and the only way to send a request
 * to a node. The {@link BlockGraph} owns edges and may point one at another node (an external
 * snapshot replaces a node by its overlay); the parent keeps the edge and never notices.
 */
public final class BlockChild {
    private static final AtomicLong SEQUENCE = new AtomicLong();

    private final String name;
    private final Set<ChildRole> roles;
    /** For an edge without a parent (an export's root, a job's hold): who uses the node, and how. */
    final String holder;
    final Permissions holderPermissions;
    /** Creation order: a permission conflict names the older user as the one already there. */
    final long sequence = SEQUENCE.incrementAndGet();
    volatile BlockNode parent;
    volatile BlockNode node;
    /** What the edge takes and shares now, as the last permission check computed it. */
    volatile Permissions permissions = Permissions.NONE_TAKEN;

    BlockChild(BlockNode parent, String name, Set<ChildRole> roles, BlockNode node) {
        this(parent, name, roles, node, null, null);
    }

    BlockChild(BlockNode parent, String name, Set<ChildRole> roles, BlockNode node, String holder,
               Permissions holderPermissions) {
        this.parent = parent;
        this.name = name;
        this.roles = roles.isEmpty() ? Collections.emptySet() : Collections.unmodifiableSet(EnumSet.copyOf(roles));
        this.node = node;
        this.holder = holder;
        this.holderPermissions = holderPermissions;
        if (holderPermissions != null) {
            this.permissions = holderPermissions;
        }
    }

    /** What the edge takes on its node and shares with the node's other users. */
    public Permissions permissions() {
        return permissions;
    }

    /**
     * Who holds the node through this edge when it has no parent node: {@code export 'disk0'},
     * {@code job 'commit-disk0'}; null for an edge from a parent node.
     */
    public String holder() {
        return holder;
    }

    /** Who uses the node through this edge, for messages: {@code blockdev 'q0' (qcow2)}, {@code export 'disk0'}. */
    public String user() {
        return holder != null ? holder : "blockdev " + parentName();
    }

    /** The same, shorter where it follows "by": {@code 'q0' (qcow2)}, {@code export 'disk0'}. */
    String userAfterBy() {
        return holder != null ? holder : parentName();
    }

    private String parentName() {
        BlockNode p = parent;
        return p == null ? "(a node being opened)" : "'" + p.nodeName() + "' (" + p.driver().name() + ")";
    }

    /** The edge's name in its parent: {@code file}, {@code backing}, {@code children.0}… */
    public String name() {
        return name;
    }

    public Set<ChildRole> roles() {
        return roles;
    }

    /** The parent node, or null for a backend's root edge. */
    public BlockNode parent() {
        return parent;
    }

    /** The node this edge points at now. */
    public BlockNode node() {
        return node;
    }

    public long size() {
        return node.size();
    }

    public void read(long offset, ByteBuffer dst) throws IOException {
        RequestPath.read(node, offset, dst, 0);
    }

    public void read(long offset, ByteBuffer dst, int flags) throws IOException {
        RequestPath.read(node, offset, dst, flags);
    }

    public void write(long offset, ByteBuffer src) throws IOException {
        RequestPath.write(node, offset, src, 0);
    }

    public void write(long offset, ByteBuffer src, int flags) throws IOException {
        RequestPath.write(node, offset, src, flags);
    }

    public void writeZeroes(long offset, long length, int flags) throws IOException {
        RequestPath.writeZeroes(node, offset, length, flags);
    }

    public void discard(long offset, long length) throws IOException {
        RequestPath.discard(node, offset, length);
    }

    /** Flushes the child node and everything below it. */
    public void flush() throws IOException {
        RequestPath.flush(node);
    }

    /** Resizes the child (a format grows or trims its image file). */
    public void truncate(long size) throws IOException {
        RequestPath.truncate(node, size);
    }

    public BlockStatus blockStatus(long offset, long length) throws IOException {
        return RequestPath.blockStatus(node, offset, length);
    }

    @Override
    public String toString() {
        return name + " -> " + node.nodeName();
    }
}
