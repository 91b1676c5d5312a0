package io.diskstack.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Deque;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Computes what every edge takes and shares, parents before children, and finds the first
 * conflict: a node one user writes (reads, resizes) while another user of it does not share that,
 * or a read-only node someone writes through. The graph runs it after every change and undoes the
 * change when it fails, so two writers never keep their own tables over one image.
 */
final class PermissionCheck {
    private PermissionCheck() {}

    /**
     * Checks the graph as it is, with the nodes in {@code assumeReadOnly} taken as read-only
     * (a change about to freeze them); publishes the result on the edges if there is no conflict.
     *
     * @throws ConfigException (EBUSY) naming both users of the node in conflict
     */
    static void check(Collection<BlockNode> nodes, Set<BlockNode> assumeReadOnly) {
        Map<BlockChild, Permissions> computed = new IdentityHashMap<>();
        for (BlockNode node : parentsFirst(nodes)) {
            Permissions users = combined(node.parents, computed);
            boolean readOnly = node.isReadOnly() || assumeReadOnly.contains(node);
            for (BlockChild c : node.children) {
                Permissions p = node.childPermissions(c, users);
                computed.put(c, readOnly ? p.withoutWrites() : p);
            }
        }
        for (BlockNode node : nodes) {
            checkNode(node, computed, node.isReadOnly() || assumeReadOnly.contains(node));
        }
        computed.forEach((edge, p) -> edge.permissions = p);
    }

    private static Permissions of(BlockChild edge, Map<BlockChild, Permissions> computed) {
        if (edge.holderPermissions != null) {
            return edge.holderPermissions;
        }
        Permissions p = computed.get(edge);
        return p != null ? p : edge.permissions;
    }

    /** What a node's users take together, and share together. */
    private static Permissions combined(List<BlockChild> users, Map<BlockChild, Permissions> computed) {
        EnumSet<Permission> taken = EnumSet.noneOf(Permission.class);
        EnumSet<Permission> shared = EnumSet.allOf(Permission.class);
        for (BlockChild e : users) {
            Permissions p = of(e, computed);
            taken.addAll(p.taken());
            shared.retainAll(p.shared());
        }
        return Permissions.of(taken, shared);
    }

    private static void checkNode(BlockNode node, Map<BlockChild, Permissions> computed, boolean readOnly) {
        List<BlockChild> users = new ArrayList<>(node.parents);
        users.sort((a, b) -> Long.compare(a.sequence, b.sequence));
        for (BlockChild u : users) {
            if (readOnly && of(u, computed).writes()) {
                throw new ConfigException(u.user() + ": " + edgeName(u) + node.nodeName()
                        + " is read-only, so it cannot be written", Errno.EBUSY);
            }
        }
        for (int i = 0; i < users.size(); i++) {
            for (int j = i + 1; j < users.size(); j++) {
                BlockChild older = users.get(i);
                BlockChild newer = users.get(j);
                Permissions o = of(older, computed);
                Permissions n = of(newer, computed);
                for (Permission p : Permission.values()) {
                    if (n.taken().contains(p) && !o.shared().contains(p)) {
                        throw conflict(node, newer, older, o, p);
                    }
                    if (o.taken().contains(p) && !n.shared().contains(p)) {
                        throw new ConfigException(newer.user() + ": " + edgeName(newer) + node.nodeName()
                                + " is " + p.done() + " by " + older.userAfterBy() + ", and this use does not share "
                                + p.noun(), Errno.EBUSY);
                    }
                }
            }
        }
    }

    private static ConfigException conflict(BlockNode node, BlockChild newer, BlockChild older, Permissions o,
                                            Permission p) {
        Permission strongest = o.taken().contains(Permission.WRITE) ? Permission.WRITE
                : o.taken().contains(Permission.RESIZE) ? Permission.RESIZE
                : o.taken().contains(Permission.WRITE_UNCHANGED) ? Permission.WRITE_UNCHANGED
                : Permission.CONSISTENT_READ;
        String how = o.taken().isEmpty() ? "used" : strongest.done();
        return new ConfigException(newer.user() + ": " + edgeName(newer) + node.nodeName() + " is already "
                + how + " by " + older.userAfterBy() + ", which does not share " + p.noun(), Errno.EBUSY);
    }

    private static String edgeName(BlockChild edge) {
        return edge.holder != null ? "node " : "'" + edge.name() + "' ";
    }

    /** The nodes with every parent before its children. */
    private static List<BlockNode> parentsFirst(Collection<BlockNode> nodes) {
        Map<BlockNode, Integer> pending = new IdentityHashMap<>();
        for (BlockNode n : nodes) {
            pending.put(n, (int) n.parents.stream().filter(e -> e.parent != null).count());
        }
        Deque<BlockNode> ready = new ArrayDeque<>();
        pending.forEach((n, count) -> {
            if (count == 0) {
                ready.add(n);
            }
        });
        List<BlockNode> out = new ArrayList<>();
        while (!ready.isEmpty()) {
            BlockNode n = ready.poll();
            out.add(n);
            for (BlockChild c : n.children) {
                Integer left = pending.computeIfPresent(c.node, (k, v) -> v - 1);
                if (left != null && left == 0) {
                    ready.add(c.node);
                }
            }
        }
        return out;
    }
}
