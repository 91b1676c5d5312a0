package io.diskstack.filters.quorum;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The vote over what the children read: children whose bytes are identical form one version;
 * the version with the most votes wins (the first one on a tie, as in QEMU).
 */
final class QuorumVote {
    /** Children that read the same bytes; {@code voters[0]} is the one whose buffer is used. */
    static final class Version {
        final int[] voters;
        int count;

        Version(int n, int first) {
            voters = new int[n];
            voters[0] = first;
            count = 1;
        }

        int representative() {
            return voters[0];
        }

        boolean contains(int child) {
            for (int i = 0; i < count; i++) {
                if (voters[i] == child) {
                    return true;
                }
            }
            return false;
        }
    }

    private final List<Version> versions = new ArrayList<>(2);

    /**
     * The common case, without allocating: if every child that answered ({@code ok[i]}) read the
     * same bytes, the first of them; otherwise (or if none answered) -1.
     */
    static int unanimous(ByteBuffer[] data, boolean[] ok) {
        int first = -1;
        for (int i = 0; i < data.length; i++) {
            if (!ok[i]) {
                continue;
            }
            if (first < 0) {
                first = i;
            } else if (!data[first].equals(data[i])) {
                return -1;
            }
        }
        return first;
    }

    /**
     * Counts the votes of the children that read successfully ({@code ok[i]}); each buffer holds
     * a child's data from position 0 to its limit.
     */
    static QuorumVote count(ByteBuffer[] data, boolean[] ok) {
        QuorumVote vote = new QuorumVote();
        for (int i = 0; i < data.length; i++) {
            if (!ok[i]) {
                continue;
            }
            Version match = null;
            for (Version v : vote.versions) {
                if (data[v.representative()].equals(data[i])) {
                    match = v;
                    break;
                }
            }
            if (match == null) {
                vote.versions.add(new Version(data.length, i));
            } else {
                match.voters[match.count++] = i;
            }
        }
        return vote;
    }

    /** True if every child that answered read the same bytes. */
    boolean unanimous() {
        return versions.size() <= 1;
    }

    /** The version with the most votes, or null if no child answered. */
    Version winner() {
        Version best = null;
        for (Version v : versions) {
            if (best == null || v.count > best.count) {
                best = v;
            }
        }
        return best;
    }

    /** True if the winner has more votes than all other versions together. */
    boolean winnerHasStrictMajority() {
        Version w = winner();
        int all = 0;
        for (Version v : versions) {
            all += v.count;
        }
        return w != null && 2 * w.count > all;
    }

    /** The children that answered with bytes other than the winner's. */
    List<Integer> losers() {
        Version w = winner();
        List<Integer> out = new ArrayList<>();
        for (Version v : versions) {
            if (v != w) {
                for (int i = 0; i < v.count; i++) {
                    out.add(v.voters[i]);
                }
            }
        }
        out.sort(null);
        return out;
    }
}
