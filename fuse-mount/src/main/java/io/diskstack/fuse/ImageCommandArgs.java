package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.KeyVal;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What the image commands (create, check, info, luks) read alike: {@code -o} options and {@code --object}s. */
final class ImageCommandArgs {
    private ImageCommandArgs() {}

    /** The {@code -o} options, flat, as qemu-img reads them (several {@code -o} add up; a key set twice is refused). */
    static Map<String, Object> formatOptions(String command, List<String> options) {
        Map<String, Object> flat = new LinkedHashMap<>();
        for (String o : options) {
            try {
                for (var e : KeyVal.parse(o, null).entrySet()) {
                    if (flat.put(e.getKey(), e.getValue()) != null) {
                        throw new ConfigException(command + ": -o '" + e.getKey() + "' is set twice");
                    }
                }
            } catch (IllegalArgumentException e) {
                throw new ConfigException(command + ": -o '" + o + "': " + e.getMessage());
            }
        }
        return flat;
    }

    /** Creates the {@code --object}s in {@code registry}, warning about a passphrase given inline. */
    static void createObjects(ObjectRegistry registry, List<String> objects, Path base, PrintWriter err) {
        var parsed = ConfigReader.readArguments(objects, List.of(), List.of(), base).objects();
        InlineSecretWarning.check(parsed, err);
        for (var o : parsed) {
            registry.create(o, base);
        }
    }
}
