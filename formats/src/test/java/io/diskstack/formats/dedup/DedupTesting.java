package io.diskstack.formats.dedup;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Creating and opening dedup devices over two files in tests. */
final class DedupTesting {
    private DedupTesting() {}

    /** Creates meta.img and data.img in dir unless they exist; returns dir. */
    static Path create(Path dir, long size, int blockSize) throws IOException {
        Path meta = dir.resolve("meta.img");
        Path data = dir.resolve("data.img");
        if (Files.exists(meta)) {
            return dir;
        }
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("metadata", meta.toString());
        o.put("data", data.toString());
        o.put("block-size", (long) blockSize);
        NodeOptions options = new NodeOptions("create (dedup)", o);
        try (ObjectRegistry objects = ObjectRegistry.load()) {
            new DedupDriver().create(new ImageCreateContext(null, size, options, objects, DriverRegistry.load()));
        }
        options.assertAllConsumed();
        return dir;
    }

    /**
     * Options of a dedup node {@code name} over meta.img and data.img in dir. Extra options with
     * a {@code no-sync} key ({@code "no-sync", true}) open the files with {@code cache.no-flush}
     * (for tests of content, not of durability: syncs are slow on shared machines).
     */
    static Map<String, Object> options(Path dir, String name, Object... extra) {
        boolean noSync = false;
        java.util.List<Object> rest = new java.util.ArrayList<>();
        for (int i = 0; i < extra.length; i += 2) {
            if (extra[i].equals("no-sync")) {
                noSync = (Boolean) extra[i + 1];
            } else {
                rest.add(extra[i]);
                rest.add(extra[i + 1]);
            }
        }
        extra = rest.toArray();
        Object[] base = {"driver", "dedup", "node-name", name,
            "metadata", Map.of("driver", "file", "filename", dir.resolve("meta.img").toString(), "cache.no-flush", noSync),
            "data", Map.of("driver", "file", "filename", dir.resolve("data.img").toString(), "cache.no-flush", noSync)};
        Object[] all = new Object[base.length + extra.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(extra, 0, all, base.length, extra.length);
        return TestGraphs.opts(all);
    }

    /** Opens the device in dir as export d0 of a new graph. */
    static BlockBackend open(BlockGraph graph, Path dir, Object... extra) throws IOException {
        graph.open(options(dir, "dd0", extra));
        return graph.addBackend("d0", "dd0", true);
    }

    static DedupNode node(BlockGraph graph) {
        return (DedupNode) graph.node("dd0");
    }
}
