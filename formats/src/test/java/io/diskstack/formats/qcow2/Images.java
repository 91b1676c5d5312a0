package io.diskstack.formats.qcow2;

import io.diskstack.core.DriverRegistry;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Creating images with our own driver, as {@code diskstack create -f qcow2 -o …} does. */
final class Images {
    private Images() {}

    static void create(Path file, long size, String... keyValues) throws IOException {
        Map<String, Object> o = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            o.put(keyValues[i], keyValues[i + 1]);
        }
        NodeOptions options = new NodeOptions("create '" + file + "' (qcow2)", o);
        new Qcow2Driver().create(new ImageCreateContext(file, size, options, ObjectRegistry.load(),
                DriverRegistry.load()));
        options.assertAllConsumed();
    }

    static Map<String, Object> node(String name, Path file) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("driver", "qcow2");
        m.put("node-name", name);
        m.put("file.driver", "file");
        m.put("file.filename", file.toString());
        return m;
    }
}
