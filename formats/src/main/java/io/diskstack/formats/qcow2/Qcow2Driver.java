package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverKind;
import io.diskstack.core.ImageCheckContext;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.OverlayRequest;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code qcow2} format driver. Options: {@code file} (required), {@code backing} (a
 * node-name, nested options, or "" / null for none; without it the header's backing file is
 * opened read-only), and QEMU's cache sizes {@code cache-size}, {@code l2-cache-size},
 * {@code refcount-cache-size}.
 */
public final class Qcow2Driver implements BlockDriver {
    static final long DEFAULT_L2_CACHE_MAX = 32L << 20;

    /**
     * Set by {@link Qcow2Check} around its own open (QEMU's BDRV_O_CHECK): an image marked
     * corrupt may be opened writable, so that a clean repair can clear the mark; what the check
     * reports (a damaged snapshot table or refcount table, an image not closed cleanly) does not
     * fail the open and is not repaired by it.
     */
    static final ThreadLocal<Boolean> OPENING_FOR_CHECK = ThreadLocal.withInitial(() -> false);

    @Override
    public String name() {
        return "qcow2";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FORMAT;
    }

    /** Images start with "QFI\xfb". */
    @Override
    public int probe(byte[] head) {
        return head.length >= 4 && ByteBuffer.wrap(head).getInt(0) == Qcow2Header.MAGIC ? 100 : 0;
    }

    @Override
    public boolean makesOverlays() {
        return true;
    }

    /** {@code qemu-img create -f qcow2 -b BACKING -F FORMAT}, opened over a {@code file} node. */
    @Override
    public Map<String, Object> createOverlay(OverlayRequest r) throws IOException {
        Map<String, Object> createOpts = new LinkedHashMap<>();
        createOpts.put("backing_file", r.backingFile());
        createOpts.put("backing_fmt", r.backingFormat());
        NodeOptions options = new NodeOptions("create '" + r.file() + "' (qcow2)", createOpts);
        create(new ImageCreateContext(r.file(), r.size(), options, r.objects(), r.drivers()));
        options.assertAllConsumed();
        Map<String, Object> file = new LinkedHashMap<>();
        file.put("driver", "file");
        file.put("node-name", r.fileNodeName());
        file.put("filename", r.fileInConfig());
        if (r.skipsDiskSync()) {
            file.put("cache.no-flush", Boolean.TRUE);
        }
        Map<String, Object> overlay = new LinkedHashMap<>();
        overlay.put("driver", "qcow2");
        overlay.put("node-name", r.nodeName());
        overlay.put("file", file);
        overlay.put("backing", r.backingNodeName());
        return overlay;
    }

    @Override
    public java.util.Set<String> reopenableOptions() {
        return java.util.Set.of("cache-size", "l2-cache-size", "refcount-cache-size");
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        long cacheSize = o.optSize("cache-size", -1);
        long l2Cache = o.optSize("l2-cache-size", -1);
        long refCache = o.optSize("refcount-cache-size", -1);
        java.util.Set<Overlaps.Kind> overlapCheck = Overlaps.readOption(o);
        Object backingRef = o.has("backing") ? o.takeChild("backing") : null;
        BlockChild file = ctx.openChild("file", ChildRole.image());
        String path = file.node().filename() != null ? file.node().filename() : file.node().nodeName();
        String describe = "'" + path + "'";
        boolean checkMode = OPENING_FOR_CHECK.get();
        OPENING_FOR_CHECK.remove(); // not for the backing chain
        try {
            Qcow2Header header = readHeader(file, checkMode);
            if (!ctx.readOnly() && header.isCorrupt() && !checkMode) {
                throw new Qcow2Exception("is marked corrupt; it can only be opened read-only "
                        + "(repair it with diskstack check -r all " + describe + ")");
            }
            Layout layout = header.layout();
            long[] l1 = ClusterMap.readL1(file, header.l1TableOffset, header.l1Size);
            long[] refTable = Refcounts.readTable(file, header.refcountTableOffset, header.refcountTableClusters,
                    layout.clusterSize);
            if (!ctx.readOnly() && !checkMode) {
                checkRefcountTable(refTable, header, layout, file.size(), describe);
            }
            SnapshotTable.Parsed snaps;
            if (checkMode) {
                SnapshotTable.Lenient lenient = SnapshotTable.readLenient(file, header.snapshotsOffset,
                        header.nbSnapshots, layout.clusterSize, header.size);
                snaps = new SnapshotTable.Parsed(lenient.error() == null ? lenient.entries() : List.of(),
                        lenient.error() == null ? lenient.bytes() : 0);
            } else {
                snaps = readSnapshots(file, header, layout);
            }
            long[] caches = cacheSizes(o, cacheSize, l2Cache, refCache, header, layout);
            BlockChild backing = null;
            if (backingRef == null) {
                backing = ctx.opensBackingFiles() ? BackingFiles.open(ctx, header, path) : null;
            } else if (!"".equals(backingRef)) {
                backing = ctx.openOptionalChild("backing", ChildRole.cow());
            }
            Qcow2Node node = new Qcow2Node(ctx, file, backing, header, describe, l1, refTable, snaps, caches[0],
                    caches[1], overlapCheck);
            if (!ctx.readOnly() && header.isDirty() && !checkMode) {
                node.repairAfterUncleanShutdown();
            }
            return node;
        } catch (Qcow2Exception e) {
            throw new ConfigException(ctx.owner() + ": " + describe + " " + e.getMessage());
        } catch (ConfigException e) {
            throw e;
        } catch (RuntimeException e) {
            // a check we missed: still one line that names the image, never a stack trace
            throw new ConfigException(ctx.owner() + ": " + describe + " is damaged (" + e + ")", e);
        }
    }

    /**
     * The refcount blocks must lie inside the file and off the header, the refcount table and
     * the L1 table: refcounts written there would destroy them. Checked before writing only (a
     * read-only open never uses the refcounts).
     */
    private static void checkRefcountTable(long[] table, Qcow2Header h, Layout layout, long fileSize,
                                           String describe) {
        long cs = layout.clusterSize;
        long tableEnd = h.refcountTableOffset + h.refcountTableClusters * cs;
        long l1End = h.l1TableOffset + h.l1Size * 8;
        for (int i = 0; i < table.length; i++) {
            long off = table[i] & Layout.REFTABLE_OFFSET_MASK;
            if (table[i] == 0) {
                continue;
            }
            String problem = null;
            if ((table[i] & Layout.REFTABLE_RESERVED) != 0) {
                problem = "has reserved bits set";
            } else if (off % cs != 0) {
                problem = "is not cluster-aligned";
            } else if (off > fileSize - cs || off < 0) {
                problem = "is past the end of the file";
            } else if (off < tableEnd && h.refcountTableOffset < off + cs) {
                problem = "is inside the refcount table";
            } else if (h.l1Size > 0 && off < l1End && h.l1TableOffset < off + cs) {
                problem = "is inside the L1 table";
            }
            if (problem != null) {
                throw new Qcow2Exception("has refcount table entry " + i + " (0x" + Long.toHexString(table[i])
                        + ") that " + problem + "; repair it with diskstack check -r all " + describe);
            }
        }
    }

    static Qcow2Header readHeader(BlockChild file, boolean checkMode) throws IOException {
        long fileSize = file.size();
        ByteBuffer first = ByteBuffer.allocate((int) Math.min(fileSize, 512));
        file.read(0, first);
        first.clear();
        Qcow2Header h = Qcow2Header.parseFixed(first, fileSize);
        int cs = 1 << h.clusterBits;
        // the whole first cluster, zeroes past the end of a shorter file (as QEMU reads it)
        ByteBuffer cluster = ByteBuffer.allocate(cs);
        file.read(0, cluster.slice(0, (int) Math.min(fileSize, cs)));
        h.parseRest(cluster, fileSize, checkMode);
        return h;
    }

    static SnapshotTable.Parsed readSnapshots(BlockChild file, Qcow2Header h, Layout layout)
            throws IOException {
        if (h.nbSnapshots == 0) {
            return new SnapshotTable.Parsed(List.of(), 0);
        }
        long fileSize = file.size();
        long max = Math.min(fileSize - h.snapshotsOffset, h.nbSnapshots * (40L + 1024 + 2 * 65535 + 8));
        max = Math.min(max, 64L << 20);
        ByteBuffer b = ByteBuffer.allocate((int) max);
        file.read(h.snapshotsOffset, b);
        b.clear();
        return SnapshotTable.parse(b, h.nbSnapshots, h.version, h.size, layout.clusterSize, fileSize);
    }

    private static long[] cacheSizes(NodeOptions o, long total, long l2, long ref, Qcow2Header h, Layout layout) {
        long cs = layout.clusterSize;
        long minRef = 4 * cs;
        long minL2 = 2 * cs;
        long l2Needed = Math.max(minL2, Math.min(h.l1Size * cs, DEFAULT_L2_CACHE_MAX));
        if (total >= 0) {
            if (l2 >= 0 && ref >= 0 && l2 + ref > total) {
                throw o.error("cache-size", "value " + total + " is less than l2-cache-size + refcount-cache-size");
            }
            if (l2 < 0 && ref < 0) {
                ref = Math.max(minRef, total / 4);
                l2 = Math.max(minL2, total - ref);
            } else if (l2 < 0) {
                l2 = Math.max(minL2, total - ref);
            } else if (ref < 0) {
                ref = Math.max(minRef, total - l2);
            }
        }
        if (l2 < 0) {
            l2 = l2Needed;
        }
        if (ref < 0) {
            ref = Math.max(minRef, 256L << 10);
        }
        return new long[] {Math.max(minL2, l2), Math.max(minRef, ref)};
    }

    @Override
    public void create(ImageCreateContext ctx) throws IOException {
        Qcow2Create.create(ctx);
    }

    /** {@code qemu-img check [-r leaks|all]} of the image file, with its backing chain. */
    @Override
    public ImageCheckContext.Report check(ImageCheckContext ctx) throws IOException {
        if (ctx.file() == null) {
            throw new ConfigException("check: a qcow2 image file is required");
        }
        Qcow2Check.Repair repair = switch (ctx.repair()) {
            case NONE -> Qcow2Check.Repair.NONE;
            case LEAKS -> Qcow2Check.Repair.LEAKS;
            case ALL -> Qcow2Check.Repair.ALL;
        };
        Qcow2Check.Report r = Qcow2Check.check(ctx.file(), repair, ctx.progress());
        return new ImageCheckContext.Report(r.image(), r.corruptions(), r.leaks(), r.checkErrors(), r.corruptionsFixed(),
                r.leaksFixed(), r.problems(), r.allocatedClusters(), r.guestClusters(), "clusters");
    }
}
