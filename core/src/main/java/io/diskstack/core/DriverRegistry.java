package io.diskstack.core;

import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;

/** The block drivers on the class path, by name. */
public final class DriverRegistry {
    private final Map<String, BlockDriver> drivers = new TreeMap<>();

    /** The drivers found by {@link ServiceLoader}. */
    public static DriverRegistry load() {
        DriverRegistry registry = new DriverRegistry();
        for (BlockDriver d : ServiceLoader.load(BlockDriver.class)) {
            registry.register(d);
        }
        return registry;
    }

    public void register(BlockDriver driver) {
        BlockDriver old = drivers.putIfAbsent(driver.name(), driver);
        if (old != null && old.getClass() != driver.getClass()) {
            throw new IllegalStateException("two drivers named '" + driver.name() + "': "
                    + old.getClass().getName() + " and " + driver.getClass().getName());
        }
    }

    /** The driver, or a {@link ConfigException} that lists the known ones. */
    public BlockDriver get(String name, String requester) {
        BlockDriver d = drivers.get(name);
        if (d == null) {
            throw new ConfigException(requester + ": unknown driver '" + name + "' (known: "
                    + String.join(", ", drivers.keySet()) + ")");
        }
        return d;
    }

    /** The driver most sure that an image starting with {@code head} is in its format, or null. */
    public BlockDriver probe(byte[] head) {
        BlockDriver best = null;
        int bestScore = 0;
        for (BlockDriver d : drivers.values()) {
            int score = d.probe(head);
            if (score > bestScore) {
                best = d;
                bestScore = score;
            }
        }
        return best;
    }

    public boolean has(String name) {
        return drivers.containsKey(name);
    }

    public java.util.Set<String> names() {
        return java.util.Collections.unmodifiableSet(drivers.keySet());
    }
}
