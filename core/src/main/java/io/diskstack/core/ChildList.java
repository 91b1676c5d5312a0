package io.diskstack.core;

import java.util.Set;

/**
 * A list of children that can grow and shrink while the node runs (a quorum's {@code children}):
 * the option key the config lists them under, and the roles a new child's edge gets. Edges are
 * named {@code KEY.N}.
 */
public record ChildList(String key, Set<ChildRole> roles) {
    public ChildList {
        roles = Set.copyOf(roles);
    }
}
