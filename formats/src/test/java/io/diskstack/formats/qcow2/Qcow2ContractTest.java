package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.testing.BlockNodeContract;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Nested;

/** The conformance suite on qcow2: several cluster sizes, subclusters, and over a backing file. */
class Qcow2ContractTest {
    abstract static class Base extends BlockNodeContract {
        abstract String[] createOptions();

        @Override
        protected String openNodes(BlockGraph graph, Path dir) throws IOException {
            Path img = dir.resolve("disk.qcow2");
            if (!Files.exists(img)) {
                Images.create(img, 10 << 20, createOptions());
            }
            graph.open(Images.node("q0", img));
            return "q0";
        }
    }

    @Nested
    class Cluster64k extends Base {
        @Override
        String[] createOptions() {
            return new String[0];
        }
    }

    @Nested
    class Cluster512 extends Base {
        @Override
        String[] createOptions() {
            return new String[] {"cluster_size", "512"};
        }
    }

    @Nested
    class Cluster4kVersion2 extends Base {
        @Override
        String[] createOptions() {
            return new String[] {"cluster_size", "4096", "compat", "0.10"};
        }
    }

    @Nested
    class Cluster2m extends Base {
        @Override
        String[] createOptions() {
            return new String[] {"cluster_size", "2M"};
        }
    }

    @Nested
    class ExtendedL2 extends Base {
        @Override
        String[] createOptions() {
            return new String[] {"cluster_size", "32768", "extended_l2", "on"};
        }
    }

    @Nested
    class TinyCaches extends Base {
        @Override
        String[] createOptions() {
            return new String[] {"cluster_size", "4096", "refcount_bits", "4"};
        }

        @Override
        protected String openNodes(BlockGraph graph, Path dir) throws IOException {
            Path img = dir.resolve("disk.qcow2");
            if (!Files.exists(img)) {
                Images.create(img, 10 << 20, createOptions());
            }
            Map<String, Object> o = Images.node("q0", img);
            o.put("l2-cache-size", "8192");
            o.put("refcount-cache-size", "16384");
            graph.open(o);
            return "q0";
        }
    }

    /** Over a zero-filled backing file (so discard may read zeroes or old data). */
    @Nested
    class OverBacking extends Base {
        @Override
        String[] createOptions() {
            return new String[0];
        }

        @Override
        protected String openNodes(BlockGraph graph, Path dir) throws IOException {
            Path base = dir.resolve("base.qcow2");
            Path img = dir.resolve("disk.qcow2");
            if (!Files.exists(img)) {
                Images.create(base, 8 << 20, "cluster_size", "4096");
                Images.create(img, 10 << 20, "backing_file", "base.qcow2", "backing_fmt", "qcow2");
            }
            graph.open(Images.node("q0", img));
            return "q0";
        }
    }
}
