package io.diskstack.formats.dedup;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverKind;
import io.diskstack.core.ImageCheckContext;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.util.EnumSet;

/**
 * The {@code dedup} format (FORMAT.md): two children, {@code metadata} (every lookup structure:
 * put it on an SSD) and {@code data} (each distinct block once: a spinning disk will do). Open
 * options: the children, and QEMU-style cache sizes {@code cache-size} (default 32 MiB),
 * {@code index-cache-size} (default three quarters of it) and {@code map-cache-size} (block map,
 * refcounts and summary: the rest). {@code block-size} and {@code hash} are chosen at create time.
 */
public final class DedupDriver implements BlockDriver {
    static final long DEFAULT_CACHE = 32L << 20;
    static final long MIN_CACHE = 64L << 10;

    @Override
    public String name() {
        return "dedup";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FORMAT;
    }

    @Override
    public boolean namesFilesInOptions() {
        return true;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        long[] caches = cacheSizes(o);
        BlockChild metadata = ctx.openChild("metadata", EnumSet.of(ChildRole.METADATA));
        BlockChild data = ctx.openChild("data", EnumSet.of(ChildRole.DATA));
        DedupNode node = new DedupNode(ctx, metadata, data, caches[0], caches[1]);
        try {
            node.load();
        } catch (DedupException e) {
            throw new ConfigException(ctx.owner() + ": " + e.getMessage());
        }
        return node;
    }

    /** {index, map} cache bytes from {@code cache-size}, {@code index-cache-size}, {@code map-cache-size}. */
    static long[] cacheSizes(NodeOptions o) {
        long total = o.optSize("cache-size", -1);
        long index = o.optSize("index-cache-size", -1);
        long map = o.optSize("map-cache-size", -1);
        if (total >= 0 && index >= 0 && map >= 0 && index + map > total) {
            throw o.error("cache-size", "value " + total + " is less than index-cache-size + map-cache-size");
        }
        if (total < 0) {
            total = index >= 0 && map >= 0 ? index + map : DEFAULT_CACHE;
        }
        if (index > total || map > total) {
            throw o.error("cache-size", "value " + total + " is less than " + (index > total ? "index" : "map")
                    + "-cache-size");
        }
        if (index < 0 && map < 0) {
            index = total / 4 * 3;
            map = total - index;
        } else if (index < 0) {
            index = total - map;
        } else if (map < 0) {
            map = total - index;
        }
        return new long[] {Math.max(MIN_CACHE, index), Math.max(MIN_CACHE, map)};
    }

    /** {@code diskstack create -f dedup -o metadata=FILE,data=FILE[,block-size=4K] SIZE}. */
    @Override
    public void create(ImageCreateContext ctx) throws IOException {
        DedupFormat.create(ctx);
    }

    /** {@code diskstack check -f dedup -o metadata=FILE,data=FILE [-r leaks]}. */
    @Override
    public ImageCheckContext.Report check(ImageCheckContext ctx) throws IOException {
        return DedupCheck.check(ctx);
    }
}
