package io.diskstack.core;

/**
 * What a user of a node may do with it (QEMU's BLK_PERM_*). Each edge takes some on its child and
 * shares some with the child's other users; the graph refuses any change after which one user
 * takes what another does not share.
 */
public enum Permission {
    /** Reads see consistent data: nobody changes it underneath but through this graph's users. */
    CONSISTENT_READ("consistent read", "read"),
    /** Writes that change what the node shows. */
    WRITE("write", "written"),
    /** Writes of data the node shows already (copy-on-read, a commit into a backing file). */
    WRITE_UNCHANGED("write unchanged", "written (unchanged data)"),
    /** Changes of the node's size. */
    RESIZE("resize", "resized"),
    /** Changes of the graph below the node. */
    GRAPH_MOD("graph change", "changed");

    private final String noun;
    private final String done;

    Permission(String noun, String done) {
        this.noun = noun;
        this.done = done;
    }

    /** {@code write}, for "does not share write". */
    public String noun() {
        return noun;
    }

    /** {@code written}, for "is already written by". */
    public String done() {
        return done;
    }
}
