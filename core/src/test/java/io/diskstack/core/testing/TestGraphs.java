package io.diskstack.core.testing;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.OptionTree;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/** Small helpers for tests that build graphs by hand. */
public final class TestGraphs {
    private TestGraphs() {}

    /** A graph with every driver and object type on the test class path. */
    public static BlockGraph newGraph(Path baseDir) {
        return new BlockGraph(DriverRegistry.load(), ObjectRegistry.load(), baseDir);
    }

    /** Flat options from alternating keys and values: {@code opts("driver", "raw", "file", "f0")}. */
    public static Map<String, Object> opts(Object... keyValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put((String) keyValues[i], keyValues[i + 1]);
        }
        return OptionTree.flatten(m);
    }

    public static byte[] randomBytes(long seed, int length) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** A direct buffer holding a copy of the bytes. */
    public static ByteBuffer direct(byte[] bytes) {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes.length);
        b.put(bytes).flip();
        return b;
    }

    public static byte[] toArray(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        d.rewind();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }
}
