package io.diskstack.formats.dedup;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.ImageCheckContext;
import io.diskstack.core.ImageCheckContext.Repair;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code diskstack check -f dedup}: the device, as it opens (the journal replayed), against the
 * invariants of FORMAT.md. Every map entry is counted against the refcounts (a refcount below its
 * references is corruption: a block that could be freed while in use; above them, a leak), every
 * index entry against its block's record, the summary and the counters against what they count.
 * A summary or counter that is off is harmless (the allocator reads the records themselves; the
 * counters are statistics) and counted with the leaks. {@link Repair#LEAKS} lowers leaked
 * refcounts (freeing unreferenced blocks) and recounts the summary and the counters;
 * {@link Repair#ALL} also raises refcounts that are too low. A repair is journaled like any
 * change, then checked again.
 *
 * <p>References are counted in windows of at most 32 Mi physical blocks (128 MiB of counts).
 */
final class DedupCheck {
    private static final int MAX_LISTED = 100;
    private static final long WINDOW = 1L << 25;

    private final DedupNode node;
    private final Geometry g;
    private final Repair fix;
    private final List<String> problems;
    private long corruptions;
    private long leaks;
    private long corruptionsFixed;
    private long leaksFixed;
    private long mapped;
    private long used;

    private DedupCheck(DedupNode node, Repair fix, List<String> problems) {
        this.node = node;
        this.g = node.g;
        this.fix = fix;
        this.problems = problems;
    }

    static ImageCheckContext.Report check(ImageCheckContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        if (ctx.file() != null) {
            throw new ConfigException(o.owner() + ": dedup names its files in -o metadata=FILE,data=FILE");
        }
        Object metaRef = o.takeChild("metadata");
        Object dataRef = o.takeChild("data");
        if (metaRef == null) {
            throw o.error("metadata", "is required");
        }
        if (dataRef == null) {
            throw o.error("data", "is required");
        }
        Path cwd = Path.of("").toAbsolutePath();
        Map<String, Object> flat = new LinkedHashMap<>();
        flat.put("driver", "dedup");
        flat.put("node-name", "check");
        flat.put("read-only", ctx.repair() == Repair.NONE);
        putChild(flat, "metadata", metaRef, cwd);
        putChild(flat, "data", dataRef, cwd);
        try (BlockGraph graph = new BlockGraph(ctx.drivers(), ctx.objects(), cwd)) {
            BlockNode n = graph.open(flat);
            return run((DedupNode) n, ctx.repair());
        }
    }

    @SuppressWarnings("unchecked")
    private static void putChild(Map<String, Object> flat, String key, Object ref, Path cwd) {
        Map<String, Object> child = ref instanceof String f ? DedupFormat.fileOptions(cwd.resolve(f))
                : (Map<String, Object>) ref;
        for (Map.Entry<String, Object> e : child.entrySet()) {
            flat.put(key + "." + e.getKey(), e.getValue());
        }
    }

    static ImageCheckContext.Report run(DedupNode node, Repair repair) throws IOException {
        Repair fix = node.isReadOnly() ? Repair.NONE : repair;
        List<String> problems = new ArrayList<>();
        DedupCheck first = new DedupCheck(node, fix, problems);
        first.locked();
        DedupCheck result = first;
        if (first.corruptionsFixed + first.leaksFixed > 0) {
            node.commit(true);
            result = new DedupCheck(node, Repair.NONE, new ArrayList<>());
            result.locked();
            for (String line : result.problems) {
                if (!problems.contains(line)) {
                    first.note(line);
                }
            }
        }
        return new ImageCheckContext.Report(node.metadataName + " and " + node.dataName, result.corruptions,
                result.leaks, 0, first.corruptionsFixed, first.leaksFixed, List.copyOf(problems), result.used,
                node.g.logicalBlocks, "blocks");
    }

    private void locked() throws IOException {
        node.lock.writeLock().lock();
        try {
            pass();
        } finally {
            node.lock.writeLock().unlock();
        }
    }

    private void note(String line) {
        if (problems.size() < MAX_LISTED) {
            problems.add(line);
        }
    }

    private void leak(String line) {
        leaks++;
        note((fix != Repair.NONE ? "Repairing: " : "") + line);
    }

    private void corruption(String line) {
        corruptions++;
        note("ERROR " + line);
    }

    private void pass() throws IOException {
        long n = g.dataBlocks;
        boolean firstWindow = true;
        for (long lo = 1; lo <= n; lo += WINDOW) {
            long hi = Math.min(n + 1, lo + WINDOW);
            int[] counts = countReferences(lo, hi, firstWindow);
            BitSet indexed = checkIndex(lo, hi, firstWindow);
            checkRecords(lo, hi, counts, indexed);
            firstWindow = false;
        }
        checkSummary();
        checkCounters();
    }

    /** References to blocks [lo, hi) from the block map; on the first window also the map's own checks. */
    private int[] countReferences(long lo, long hi, boolean firstWindow) throws IOException {
        int[] counts = new int[(int) (hi - lo)];
        for (long l = 0; l < g.logicalBlocks; l++) {
            long p = node.map.raw(l);
            if (firstWindow && p != 0) {
                mapped++;
                if (p > g.dataBlocks) {
                    corruption("logical block " + l + " maps to physical block " + p + ", outside " + node.dataName
                            + " (" + g.dataBlocks + " blocks)");
                }
            }
            if (p >= lo && p < hi) {
                counts[(int) (p - lo)]++;
            }
        }
        return counts;
    }

    /** The index entries: their own checks on the first window, and which blocks of [lo, hi) they name. */
    private BitSet checkIndex(long lo, long hi, boolean firstWindow) throws IOException {
        BitSet indexed = new BitSet((int) (hi - lo));
        for (long bucket = 0; bucket < g.buckets; bucket++) {
            byte[] b = node.pages.get(g.indexStart + bucket);
            int count = Bytes.u16(b, 0);
            if (count > Geometry.INDEX_PER_PAGE) {
                if (firstWindow) {
                    corruption("index bucket " + bucket + " says it holds " + count + " entries (at most "
                            + Geometry.INDEX_PER_PAGE + ")");
                }
                continue;
            }
            Set<String> fingerprints = firstWindow ? new HashSet<>() : null;
            for (int i = 0; i < count; i++) {
                int off = Geometry.INDEX_HEADER + i * Geometry.INDEX_ENTRY;
                long fpHi = Bytes.u64(b, off);
                long p = Bytes.u40(b, off + 16);
                if (firstWindow) {
                    if (p < 1 || p > g.dataBlocks) {
                        corruption("index bucket " + bucket + " entry " + i + " points at physical block " + p
                                + ", outside " + node.dataName + " (" + g.dataBlocks + " blocks)");
                    }
                    if (node.index.bucketOf(fpHi) != bucket) {
                        corruption("index bucket " + bucket + " entry " + i + " holds a fingerprint of bucket "
                                + node.index.bucketOf(fpHi));
                    }
                    if (!fingerprints.add(fpHi + ":" + Bytes.u64(b, off + 8))) {
                        corruption("index bucket " + bucket + " holds one fingerprint twice");
                    }
                }
                if (p >= lo && p < hi) {
                    if (indexed.get((int) (p - lo))) {
                        corruption("physical block " + p + " is in the index twice");
                    }
                    indexed.set((int) (p - lo));
                    if (node.refs.refcount(p) == 0) {
                        corruption("index bucket " + bucket + " names physical block " + p + ", which is free");
                    } else if (node.refs.bucketTag(p) != bucket + 1) {
                        corruption("index bucket " + bucket + " names physical block " + p + ", whose record names "
                                + (node.refs.bucketTag(p) == 0 ? "no bucket" : "bucket " + (node.refs.bucketTag(p) - 1)));
                    }
                }
            }
        }
        return indexed;
    }

    private void checkRecords(long lo, long hi, int[] counts, BitSet indexed) throws IOException {
        for (long p = lo; p < hi; p++) {
            int r = node.refs.refcount(p);
            long tag = node.refs.bucketTag(p);
            int c = counts[(int) (p - lo)];
            if (r < c) {
                corruption("block " + p + " refcount=" + r + " reference=" + c);
                if (fix == Repair.ALL && c <= RefCounts.MAX) {
                    node.refs.set(p, c, tag);
                    corruptionsFixed++;
                    r = c;
                }
            } else if (r > c) {
                leaks++;
                note((fix != Repair.NONE ? "Repairing leaked" : "Leaked") + " block " + p + " refcount=" + r
                        + " reference=" + c);
                if (fix != Repair.NONE) {
                    if (c == 0) {
                        if (tag != 0) {
                            node.index.remove(tag - 1, p);
                        }
                        node.refs.set(p, 0, 0);
                    } else {
                        node.refs.set(p, c, tag);
                    }
                    leaksFixed++;
                    r = c;
                }
            }
            if (r != 0 && tag != 0 && !indexed.get((int) (p - lo))) {
                corruption("block " + p + " names index bucket " + (tag - 1) + ", which has no entry for it");
            }
            if (r != 0) {
                used++;
            }
        }
    }

    private void checkSummary() throws IOException {
        for (long r = 0; r < g.recordPages && r * Geometry.RECORDS_PER_PAGE <= g.dataBlocks; r++) {
            int inUse = 0;
            for (long p = node.refs.firstOf(r); p < node.refs.endOf(r); p++) {
                if (node.refs.refcount(p) != 0) {
                    inUse++;
                }
            }
            int said = node.refs.usedIn(r);
            if (said != inUse) {
                // harmless (the allocator reads the records themselves), so a leak: -r leaks recounts it
                leak("the summary says record page " + r + " has " + said + " blocks in use; it has " + inUse);
                if (fix != Repair.NONE) {
                    node.refs.setUsedIn(r, inUse);
                    leaksFixed++;
                }
            }
        }
    }

    private void checkCounters() throws IOException {
        if (node.map.mapped != mapped || node.refs.used != used) {
            leak("the counters say " + node.map.mapped + " logical blocks mapped and " + node.refs.used
                    + " physical blocks used; there are " + mapped + " and " + used);
            if (fix != Repair.NONE) {
                node.map.mapped = mapped;
                node.refs.used = used;
                node.writeCounters();
                leaksFixed++;
            }
        }
    }
}
