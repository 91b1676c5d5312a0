package io.diskstack.core.objects;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.options.NodeOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/** The objects of one graph, by id, and the object drivers that make them. */
public final class ObjectRegistry implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ObjectRegistry.class.getName());
    private final Map<String, ObjectDriver> drivers = new TreeMap<>();
    private final Map<String, Object> objects = new LinkedHashMap<>();
    /** Users of an object outside the graph's nodes (a front end's option), by object id. */
    private final Map<String, List<String>> holders = new LinkedHashMap<>();
    /** Bumped when objects come or go, so what shows them is rebuilt. */
    private volatile long generation;

    public static ObjectRegistry load() {
        ObjectRegistry registry = new ObjectRegistry();
        for (ObjectDriver d : ServiceLoader.load(ObjectDriver.class)) {
            registry.drivers.putIfAbsent(d.qomType(), d);
        }
        return registry;
    }

    /** Creates an object from flat options that include {@code qom-type} and {@code id}. */
    public synchronized Object create(Map<String, Object> flatOptions, Path baseDir) {
        NodeOptions head = new NodeOptions("object", flatOptions);
        String type = head.requireString("qom-type");
        String id = head.requireString("id");
        if (!BlockGraph.isValidName(id)) {
            throw new ConfigException("object '" + id + "': 'id' must start with a letter and use only "
                    + "letters, digits, '-', '.' and '_' (at most 31)");
        }
        if (objects.containsKey(id)) {
            throw new ConfigException("object '" + id + "': duplicate id");
        }
        ObjectDriver driver = drivers.get(type);
        if (driver == null) {
            throw new ConfigException("object '" + id + "': unknown qom-type '" + type + "' (known: "
                    + String.join(", ", drivers.keySet()) + ")");
        }
        Map<String, Object> rest = new LinkedHashMap<>(flatOptions);
        rest.remove("qom-type");
        rest.remove("id");
        NodeOptions options = new NodeOptions("object '" + id + "' (" + type + ")", rest);
        Object object = driver.create(id, options, baseDir);
        try {
            options.assertAllConsumed();
        } catch (ConfigException e) {
            closeQuietly(object);
            throw e;
        }
        objects.put(id, object);
        generation++;
        return object;
    }

    /** Adds an object made elsewhere (tests, embedding). */
    public synchronized void put(String id, Object object) {
        if (objects.putIfAbsent(id, object) != null) {
            throw new ConfigException("object '" + id + "': duplicate id");
        }
        generation++;
    }

    /**
     * Records that {@code holder} (a front end, described for a message: {@code "the NBD server's
     * 'tls-creds'"}) uses object {@code id} for as long as the registry lives, so that it is not
     * deleted under it; node users are the graph's to track.
     */
    public synchronized void hold(String id, String holder) {
        holders.computeIfAbsent(id, k -> new ArrayList<>()).add(holder);
    }

    /** Who outside the graph's nodes uses object {@code id} ({@link #hold}). */
    public synchronized List<String> holders(String id) {
        return List.copyOf(holders.getOrDefault(id, List.of()));
    }

    /** Removes and closes the object; false if there is none with that id. */
    public synchronized boolean remove(String id) {
        Object o = objects.remove(id);
        if (o == null) {
            return false;
        }
        holders.remove(id);
        closeQuietly(o);
        generation++;
        return true;
    }

    /** A counter that changes whenever an object is added or the registry is closed. */
    public long generation() {
        return generation;
    }

    /** The folders below {@code MNT/.control} that object types put their objects' folders in. */
    public synchronized java.util.Set<String> controlFolders() {
        java.util.Set<String> out = new java.util.TreeSet<>();
        for (ObjectDriver d : drivers.values()) {
            if (d.controlFolder() != null) {
                out.add(d.controlFolder());
            }
        }
        return out;
    }

    /**
     * The object {@code id} of the given type, or an error that names the requester and the key
     * that referred to it.
     */
    public synchronized <T> T get(String id, Class<T> type, String requester, String key) {
        Object o = objects.get(id);
        if (o == null) {
            throw new ConfigException(requester + ": '" + key + "' refers to unknown object '" + id + "'");
        }
        if (!type.isInstance(o)) {
            throw new ConfigException(requester + ": '" + key + "' refers to object '" + id
                    + "', which is not a " + typeName(type));
        }
        return type.cast(o);
    }

    /** All objects of a type, in creation order. */
    public synchronized <T> List<T> all(Class<T> type) {
        List<T> out = new ArrayList<>();
        for (Object o : objects.values()) {
            if (type.isInstance(o)) {
                out.add(type.cast(o));
            }
        }
        return out;
    }

    public synchronized Map<String, Object> byId() {
        return new LinkedHashMap<>(objects);
    }

    @Override
    public synchronized void close() {
        for (Object o : objects.values()) {
            closeQuietly(o);
        }
        objects.clear();
        generation++;
    }

    private static void closeQuietly(Object o) {
        if (o instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception e) {
                LOG.log(Level.WARNING, "closing object failed: " + e.getMessage());
            }
        }
    }

    private static String typeName(Class<?> type) {
        return type.getSimpleName().replaceAll("([a-z])([A-Z])", "$1-$2").toLowerCase(java.util.Locale.ROOT);
    }
}
