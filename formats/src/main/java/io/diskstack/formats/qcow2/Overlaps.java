package io.diskstack.formats.qcow2;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * Where an image's metadata lives, so that a data write or a new cluster never lands on it (a
 * hostile L2 entry pointing at the refcount table, a refcount of 0 on an L1 table): QEMU's
 * "Preventing invalid write on metadata". Covers the header cluster, the active L1 table, the
 * refcount table and blocks, the active L2 tables, the snapshot table and the snapshots' L1
 * tables (not the snapshots' own L2 tables, as QEMU's default).
 *
 * <p>The ranges are kept as a sorted array of disjoint cluster ranges, checked with a binary
 * search, plus a small set of clusters that became metadata since (new L2 tables and refcount
 * blocks), merged into the array when it grows. Built and changed under the image's metadata
 * write lock; {@link #overlap} also runs under its read side.
 */
final class Overlaps {
    /** Lists every metadata range of the image ({@link #rebuild}). */
    interface Source {
        void collect(Overlaps sink);
    }

    private final Layout layout;
    private final Source source;
    /** Sorted disjoint cluster ranges [starts[i], ends[i]). */
    private long[] starts = new long[0];
    private long[] ends = new long[0];
    private final Set<Long> recent = new HashSet<>();
    private long[] building;
    private int buildCount;

    Overlaps(Layout layout, Source source) {
        this.layout = layout;
        this.source = source;
    }

    /** Re-reads every range from the image's current state (after snapshot operations, a table move). */
    void rebuild() {
        building = new long[64];
        buildCount = 0;
        source.collect(this);
        int n = buildCount / 2;
        long[] s = new long[n];
        long[] e = new long[n];
        for (int i = 0; i < n; i++) {
            s[i] = building[2 * i];
            e[i] = building[2 * i + 1];
        }
        building = null;
        // the union of the ranges: sweep the sorted starts and ends with a count of open ranges
        Arrays.sort(s);
        Arrays.sort(e);
        long[] us = new long[n];
        long[] ue = new long[n];
        int m = 0;
        int open = 0;
        long from = 0;
        for (int i = 0, j = 0; j < n; ) {
            if (i < n && s[i] < e[j]) {
                if (open++ == 0) {
                    if (m > 0 && ue[m - 1] == s[i]) {
                        m--; // adjacent to the previous range: one range
                        from = us[m];
                    } else {
                        from = s[i];
                    }
                }
                i++;
            } else {
                if (--open == 0) {
                    us[m] = from;
                    ue[m] = e[j];
                    m++;
                }
                j++;
            }
        }
        starts = Arrays.copyOf(us, m);
        ends = Arrays.copyOf(ue, m);
        recent.clear();
    }

    /** During {@link Source#collect}: bytes [offset, offset+length) hold metadata. */
    void range(long offset, long length) {
        if (length <= 0 || offset < 0) {
            return;
        }
        long first = offset >>> layout.clusterBits;
        long last = (offset + length - 1) >>> layout.clusterBits;
        if (last < first) {
            last = Long.MAX_VALUE >>> layout.clusterBits;
        }
        if (buildCount + 2 > building.length) {
            building = Arrays.copyOf(building, building.length * 2);
        }
        building[buildCount++] = first;
        building[buildCount++] = last + 1;
    }

    /** The cluster at {@code offset} became metadata (a new L2 table or refcount block). */
    void add(long offset) {
        long c = offset >>> layout.clusterBits;
        if (inRanges(c, c + 1)) {
            return;
        }
        recent.add(c);
        if (recent.size() > Math.max(256, starts.length / 4)) {
            rebuild();
        }
    }

    private boolean inRanges(long first, long end) {
        // the last range starting before end is the only one that can reach into [first, end)
        int lo = 0;
        int hi = starts.length - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (starts[mid] < end) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found >= 0 && ends[found] > first;
    }

    /** True if bytes [offset, offset+length) touch a metadata cluster. */
    boolean overlap(long offset, long length) {
        long first = offset >>> layout.clusterBits;
        long end = ((offset + length - 1) >>> layout.clusterBits) + 1;
        if (inRanges(first, end)) {
            return true;
        }
        if (!recent.isEmpty()) {
            for (long c = first; c < end; c++) {
                if (recent.contains(c)) {
                    return true;
                }
            }
        }
        return false;
    }
}
