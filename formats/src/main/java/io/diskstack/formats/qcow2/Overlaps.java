package io.diskstack.formats.qcow2;

import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * Where an image's metadata lives, so that a data write or a new cluster never lands on it (a
 * hostile L2 entry pointing at the refcount table, a refcount of 0 on an L1 table): QEMU's
 * "Preventing invalid write on metadata", with its {@code overlap-check} option choosing the
 * {@link Kind kinds} of metadata checked ({@code cached} by default: all but the snapshots' own
 * L2 tables, which would have to be read first).
 *
 * <p>The ranges are kept as a sorted array of disjoint cluster ranges, checked with a binary
 * search, plus a small map of clusters that became metadata since (new L2 tables and refcount
 * blocks), merged into the array when it grows. Built and changed under the image's metadata
 * write lock; {@link #overlap} also runs under its read side.
 */
final class Overlaps {
    /** QEMU's metadata kinds, with its option and message names. */
    enum Kind {
        MAIN_HEADER("main-header", "the image header"),
        ACTIVE_L1("active-l1", "the active L1 table"),
        ACTIVE_L2("active-l2", "an active L2 table"),
        REFCOUNT_TABLE("refcount-table", "the refcount table"),
        REFCOUNT_BLOCK("refcount-block", "a refcount block"),
        SNAPSHOT_TABLE("snapshot-table", "the snapshot table"),
        INACTIVE_L1("inactive-l1", "a snapshot's L1 table"),
        INACTIVE_L2("inactive-l2", "a snapshot's L2 table"),
        BITMAP_DIRECTORY("bitmap-directory", "the bitmap directory");

        final String option;
        final String description;

        Kind(String option, String description) {
            this.option = option;
            this.description = description;
        }
    }

    /** QEMU's {@code overlap-check} modes (templates). */
    enum Mode {
        NONE, CONSTANT, CACHED, ALL;

        Set<Kind> kinds() {
            EnumSet<Kind> constant = EnumSet.of(Kind.MAIN_HEADER, Kind.ACTIVE_L1, Kind.REFCOUNT_TABLE,
                    Kind.SNAPSHOT_TABLE, Kind.BITMAP_DIRECTORY);
            return switch (this) {
                case NONE -> EnumSet.noneOf(Kind.class);
                case CONSTANT -> constant;
                case CACHED -> {
                    constant.addAll(EnumSet.of(Kind.ACTIVE_L2, Kind.REFCOUNT_BLOCK, Kind.INACTIVE_L1));
                    yield constant;
                }
                case ALL -> EnumSet.allOf(Kind.class);
            };
        }
    }

    /** Lists every metadata range of the image ({@link #rebuild}); may read snapshot tables. */
    interface Source {
        void collect(Overlaps sink) throws IOException;
    }

    private final Layout layout;
    private final Source source;
    private final Set<Kind> checked;
    /** Sorted disjoint cluster ranges [starts[i], ends[i]). */
    private long[] starts = new long[0];
    private long[] ends = new long[0];
    private final Map<Long, Kind> recent = new HashMap<>();
    private long[] building;
    private int buildCount;
    /** While {@link #describe} probes: the cluster range looked for, and what was found. */
    private long probeFirst = -1;
    private long probeEnd;
    private Kind probed;
    /** A rebuild failed (an I/O error reading a snapshot's table): the next write rebuilds first. */
    volatile boolean stale;

    Overlaps(Layout layout, Source source, Set<Kind> checked) {
        this.layout = layout;
        this.source = source;
        this.checked = checked.isEmpty() ? EnumSet.noneOf(Kind.class) : EnumSet.copyOf(checked);
    }

    /**
     * QEMU's {@code overlap-check} option: a mode ({@code none}, {@code constant},
     * {@code cached}, the default, or {@code all}), or per-kind booleans over a template:
     * {@code overlap-check.template=cached,overlap-check.inactive-l2=on}.
     */
    static Set<Kind> readOption(NodeOptions o) {
        boolean perKind = o.unconsumed().stream().anyMatch(k -> k.startsWith("overlap-check."));
        Mode mode;
        if (perKind) {
            if (o.unconsumed().contains("overlap-check")) {
                throw o.error("overlap-check", "is given both as a mode and with per-kind options (give the mode as "
                        + "'overlap-check.template')");
            }
            mode = o.optEnum("overlap-check.template", Mode.class, Mode.CACHED);
        } else {
            mode = o.optEnum("overlap-check", Mode.class, Mode.CACHED);
        }
        Set<Kind> kinds = mode.kinds();
        for (Kind k : Kind.values()) {
            String key = "overlap-check." + k.option;
            if (o.has(key)) {
                if (o.optBool(key, false)) {
                    kinds.add(k);
                } else {
                    kinds.remove(k);
                }
            }
        }
        return kinds;
    }

    boolean checks(Kind kind) {
        return checked.contains(kind);
    }

    /** Re-reads every range from the image's current state (after snapshot operations, a table move). */
    void rebuild() throws IOException {
        building = new long[64];
        buildCount = 0;
        try {
            source.collect(this);
        } catch (IOException | RuntimeException e) {
            building = null;
            stale = true;
            throw e;
        }
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
        stale = false;
    }

    /** During {@link Source#collect}: bytes [offset, offset+length) hold metadata of this kind. */
    void range(Kind kind, long offset, long length) {
        if (length <= 0 || offset < 0 || !checked.contains(kind)) {
            return;
        }
        long first = offset >>> layout.clusterBits;
        long last = (offset + length - 1) >>> layout.clusterBits;
        if (last < first) {
            last = Long.MAX_VALUE >>> layout.clusterBits;
        }
        if (probeFirst >= 0) {
            if (probed == null && first < probeEnd && last >= probeFirst) {
                probed = kind;
            }
            return;
        }
        if (buildCount + 2 > building.length) {
            building = Arrays.copyOf(building, building.length * 2);
        }
        building[buildCount++] = first;
        building[buildCount++] = last + 1;
    }

    /** The cluster at {@code offset} became metadata (a new L2 table or refcount block). */
    void add(Kind kind, long offset) throws IOException {
        if (!checked.contains(kind)) {
            return;
        }
        long c = offset >>> layout.clusterBits;
        if (inRanges(c, c + 1)) {
            return;
        }
        recent.put(c, kind);
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

    /** True if bytes [offset, offset+length) touch a metadata cluster of a checked kind. */
    boolean overlap(long offset, long length) {
        long first = offset >>> layout.clusterBits;
        long end = ((offset + length - 1) >>> layout.clusterBits) + 1;
        if (inRanges(first, end)) {
            return true;
        }
        if (!recent.isEmpty()) {
            for (long c = first; c < end; c++) {
                if (recent.containsKey(c)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** What metadata [offset, offset+length) holds, for a message (slow: collects again). */
    String describe(long offset, long length) {
        long first = offset >>> layout.clusterBits;
        long end = ((offset + length - 1) >>> layout.clusterBits) + 1;
        for (long c = first; c < end && c - first < 1024; c++) {
            Kind k = recent.get(c);
            if (k != null) {
                return k.description;
            }
        }
        probeFirst = first;
        probeEnd = end;
        probed = null;
        try {
            source.collect(this);
        } catch (IOException | RuntimeException e) {
            // only the message loses its detail
        } finally {
            probeFirst = -1;
        }
        return probed == null ? "metadata" : probed.description;
    }
}
