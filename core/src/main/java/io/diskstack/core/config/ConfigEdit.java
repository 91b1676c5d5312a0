package io.diskstack.core.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.diskstack.core.ConfigException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Edits of a JSON config that record a graph change (an external snapshot's overlays, a
 * commit's or a mirror's pivot, a stream), so that a remount opens the graph as it is now. Each
 * edit names nodes by node-name, finds them whether the config gives them an entry of their own
 * or nests them in their parent's, and fails with a {@link ConfigException} rather than guess.
 * Nothing is written until {@link #toBytes()}; {@link ConfigRewrite#writeAtomically} does that.
 */
public final class ConfigEdit {
    static final String SNAPSHOTS = "external-snapshots";
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT);

    private final String where;
    private final Map<String, Object> top;
    private final List<Object> blockdevs;

    private ConfigEdit(String where, Map<String, Object> top, List<Object> blockdevs) {
        this.where = where;
        this.top = top;
        this.blockdevs = blockdevs;
    }

    /** Starts editing config text; {@code where} names it in messages ({@code config 'c.json'}). */
    @SuppressWarnings("unchecked")
    public static ConfigEdit of(byte[] config, String where) {
        Object tree;
        try {
            tree = JSON.readValue(config, Object.class);
        } catch (IOException e) {
            throw new ConfigException(where + ": cannot read it any more: " + e.getMessage());
        }
        if (!(tree instanceof Map<?, ?> topRaw) || !(topRaw.get("blockdev") instanceof List<?>)) {
            throw new ConfigException(where + ": has no 'blockdev' list any more");
        }
        Map<String, Object> top = (Map<String, Object>) topRaw;
        return new ConfigEdit(where, top, (List<Object>) top.get("blockdev"));
    }

    /** The edited config, as JSON text. */
    public byte[] toBytes() {
        try {
            return (JSON.writeValueAsString(top) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ConfigException(where + ": cannot write it: " + e.getMessage());
        }
    }

    /** True if the config has an entry (top-level or nested) with this node-name. */
    public boolean defines(String node) {
        return findNode(blockdevs, node) != null;
    }

    /** Sets an option of a node's entry (a nested node moves to an entry of its own first). */
    public void set(String node, String key, Object value) {
        entry(node).put(key, value);
    }

    /** Removes an option of a node's entry, if it has it. */
    public void remove(String node, String key) {
        entry(node).remove(key);
    }

    /**
     * Adds a node's entry right after {@code after}'s. Nested children of the options that have a
     * node-name become entries of their own before it, so every named node has one entry.
     */
    public void insertAfter(String after, Map<String, Object> options) {
        int index = indexOf(after);
        List<Map<String, Object>> entries = new ArrayList<>();
        Map<String, Object> copy = deepCopy(options);
        hoistNamed(copy, entries);
        entries.add(copy);
        blockdevs.addAll(index + 1, entries);
    }

    /** Adds a node's entry at the end, its named nested children before it. */
    public void append(Map<String, Object> options) {
        Map<String, Object> copy = deepCopy(options);
        List<Map<String, Object>> entries = new ArrayList<>();
        hoistNamed(copy, entries);
        entries.add(copy);
        blockdevs.addAll(entries);
    }

    /**
     * Points the child option {@code edge} ({@code file}, {@code children.0}, {@code backing}) of
     * node {@code parent} from node {@code from} at node {@code to}.
     */
    public void repoint(String parent, String edge, String from, String to) {
        Object entry = parent.startsWith("#") ? null : findNode(blockdevs, parent);
        if (entry == null) {
            throw new ConfigException(where + ": node '" + from + "' is used by '" + parent
                    + "', which has no entry with that node-name there");
        }
        if (!setReference(entry, edge, from, to)) {
            throw new ConfigException(where + ": the entry of node '" + parent + "' does not name '" + from
                    + "' as '" + edge + "'");
        }
    }

    /** Makes every export of node {@code from} export node {@code to}. */
    @SuppressWarnings("unchecked")
    public void repointExports(String from, String to) {
        if (top.get("exports") instanceof List<?> exports) {
            for (Object e : exports) {
                if (e instanceof Map<?, ?> m && from.equals(m.get("node-name"))) {
                    ((Map<String, Object>) m).put("node-name", to);
                }
            }
        }
    }

    /**
     * Removes a node's entry, with whatever is nested in it. A node nested in its parent's entry
     * has gone already when the parent's reference was repointed.
     */
    public void removeNode(String node) {
        blockdevs.removeIf(e -> e instanceof Map<?, ?> m && node.equals(m.get("node-name")));
    }

    /** Takes a nested node out of whichever entry holds it, leaving its node-name there. */
    private Map<String, Object> hoistFromEntries(String node) {
        for (Object entry : blockdevs) {
            Map<String, Object> found = hoist(entry, node);
            if (found != null) {
                return found;
            }
        }
        return null;
    }

    /** The external snapshots the config records. */
    public List<ExternalSnapshotRecord> snapshots() {
        return ConfigReader.snapshotRecords(where, top.get(SNAPSHOTS));
    }

    /** Records an external snapshot (after the ones recorded). */
    @SuppressWarnings("unchecked")
    public void addSnapshot(ExternalSnapshotRecord record) {
        List<Object> list = top.get(SNAPSHOTS) instanceof List<?> l ? (List<Object>) l : new ArrayList<>();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", record.name());
        m.put("export", record.export());
        m.put("overlays", new ArrayList<>(record.overlays()));
        list.add(m);
        top.put(SNAPSHOTS, list);
    }

    /** Forgets the recorded external snapshots with these names. */
    public void removeSnapshots(java.util.Collection<String> names) {
        if (top.get(SNAPSHOTS) instanceof List<?> l) {
            l.removeIf(o -> o instanceof Map<?, ?> m && names.contains(m.get("name")));
            if (l.isEmpty()) {
                top.remove(SNAPSHOTS);
            }
        }
    }

    /** Adds an object's entry ({@code qom-type}, {@code id}, …). */
    @SuppressWarnings("unchecked")
    public void addObject(Map<String, Object> options) {
        List<Object> list = top.get("objects") instanceof List<?> l ? (List<Object>) l : new ArrayList<>();
        list.add(deepCopy(options));
        top.put("objects", list);
    }

    /** Removes the object with this id; false if the config has none. */
    public boolean removeObject(String id) {
        return top.get("objects") instanceof List<?> l && l.removeIf(o -> o instanceof Map<?, ?> m && id.equals(m.get("id")));
    }

    /** Adds an export's entry ({@code id}, {@code node-name}, …). */
    @SuppressWarnings("unchecked")
    public void addExport(Map<String, Object> options) {
        List<Object> list = top.get("exports") instanceof List<?> l ? (List<Object>) l : new ArrayList<>();
        list.add(deepCopy(options));
        top.put("exports", list);
    }

    /** Makes export {@code id} show node {@code node}. */
    @SuppressWarnings("unchecked")
    public void setExportNode(String id, String node) {
        if (top.get("exports") instanceof List<?> exports) {
            for (Object e : exports) {
                if (e instanceof Map<?, ?> m && id.equals(m.get("id"))) {
                    ((Map<String, Object>) m).put("node-name", node);
                    return;
                }
            }
        }
        throw new ConfigException(where + ": has no export '" + id + "'");
    }

    /** Removes the export with this id; false if the config has none. */
    public boolean removeExport(String id) {
        return top.get("exports") instanceof List<?> l && l.removeIf(o -> o instanceof Map<?, ?> m && id.equals(m.get("id")));
    }

    /** Adds {@code child} (a node-name) at the end of the list {@code key} of node {@code node}'s entry. */
    public void appendToList(String node, String key, String child) {
        list(node, key).add(child);
    }

    /**
     * Takes the child that is node {@code child} (by node-name) out of the list {@code key} of node
     * {@code node}'s entry, or the one at {@code index} if no element names it.
     */
    public void removeFromList(String node, String key, String child, int index) {
        List<Object> list = list(node, key);
        for (int i = 0; i < list.size(); i++) {
            if (child.equals(list.get(i)) || isNodeNamed(list.get(i), child)) {
                list.remove(i);
                return;
            }
        }
        if (index < 0 || index >= list.size()) {
            throw new ConfigException(where + ": the entry of node '" + node + "' has no '" + key + "." + index + "'");
        }
        list.remove(index);
    }

    /** The list {@code key} of a node's entry, gathered into a JSON list if the entry spells it dotted. */
    @SuppressWarnings("unchecked")
    private List<Object> list(String node, String key) {
        Map<String, Object> e = entry(node);
        if (e.get(key) instanceof List<?> l) {
            return (List<Object>) l;
        }
        List<Object> out = new ArrayList<>();
        for (int i = 0; e.containsKey(key + "." + i); i++) {
            out.add(e.remove(key + "." + i));
        }
        e.put(key, out);
        return out;
    }

    // ---- finding entries ----

    /** The node's own entry, made top-level first if the config nests it in another. */
    @SuppressWarnings("unchecked")
    private Map<String, Object> entry(String node) {
        return (Map<String, Object>) blockdevs.get(indexOf(node));
    }

    private int indexOf(String node) {
        for (int i = 0; i < blockdevs.size(); i++) {
            if (blockdevs.get(i) instanceof Map<?, ?> m && node.equals(m.get("node-name"))) {
                return i;
            }
        }
        if (node.startsWith("#")) {
            throw new ConfigException(where + ": node '" + node + "' has no node-name there; give it one "
                    + "to change the graph around it");
        }
        Map<String, Object> nested = hoistFromEntries(node);
        if (nested == null) {
            throw new ConfigException(where + ": does not define node '" + node + "' in a blockdev entry "
                    + "or a nested object with that node-name");
        }
        blockdevs.add(nested);
        return blockdevs.size() - 1;
    }

    /**
     * Finds the nested object with this node-name below {@code tree} (not a top-level entry), puts
     * the node-name in its place, and returns it; null if there is none.
     */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> hoist(Object tree, String name) {
        if (tree instanceof Map<?, ?> raw) {
            Map<String, Object> m = (Map<String, Object>) raw;
            for (Map.Entry<String, Object> e : m.entrySet()) {
                if (e.getValue() instanceof Map<?, ?> child && name.equals(child.get("node-name"))) {
                    e.setValue(name);
                    return (Map<String, Object>) child;
                }
                Map<String, Object> found = hoist(e.getValue(), name);
                if (found != null) {
                    return found;
                }
            }
        } else if (tree instanceof List<?> raw) {
            List<Object> l = (List<Object>) raw;
            for (int i = 0; i < l.size(); i++) {
                Object item = l.get(i);
                if (item instanceof Map<?, ?> child && name.equals(child.get("node-name"))) {
                    l.set(i, name);
                    return (Map<String, Object>) child;
                }
                Map<String, Object> found = hoist(item, name);
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
    }

    /** Moves nested children that have a node-name out of {@code options} into {@code out}, deepest first. */
    @SuppressWarnings("unchecked")
    private static void hoistNamed(Map<String, Object> options, List<Map<String, Object>> out) {
        for (Map.Entry<String, Object> e : options.entrySet()) {
            if (e.getValue() instanceof Map<?, ?> child) {
                Map<String, Object> c = (Map<String, Object>) child;
                hoistNamed(c, out);
                if (c.get("node-name") instanceof String name) {
                    out.add(c);
                    e.setValue(name);
                }
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> deepCopy(Map<String, Object> m) {
        Map<String, Object> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put(k, v instanceof Map<?, ?> c ? deepCopy((Map<String, Object>) c)
                : v instanceof List<?> l ? new ArrayList<>(l) : v));
        return out;
    }

    /** The object with this node-name anywhere in the tree, or null. */
    private static Object findNode(Object tree, String name) {
        if (tree instanceof Map<?, ?> m) {
            if (name.equals(m.get("node-name"))) {
                return m;
            }
            for (Object v : m.values()) {
                Object found = findNode(v, name);
                if (found != null) {
                    return found;
                }
            }
        } else if (tree instanceof List<?> l) {
            for (Object v : l) {
                Object found = findNode(v, name);
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
    }

    /**
     * Sets the child option at the dotted {@code path} ({@code file}, {@code children.0}) from
     * {@code from} to {@code to}, whether the entry nests it ({@code "children": [...]}) or
     * spells it dotted ({@code "children.0": ...}). False if it is not there.
     */
    @SuppressWarnings("unchecked")
    static boolean setReference(Object container, String path, String from, String to) {
        String[] parts = path.split("\\.");
        if (container instanceof Map<?, ?> raw) {
            Map<String, Object> m = (Map<String, Object>) raw;
            for (int k = parts.length; k >= 1; k--) {
                String key = String.join(".", Arrays.copyOfRange(parts, 0, k));
                if (!m.containsKey(key)) {
                    continue;
                }
                if (k == parts.length) {
                    if (from.equals(m.get(key)) || isNodeNamed(m.get(key), from)) {
                        m.put(key, to);
                        return true;
                    }
                } else if (setReference(m.get(key), String.join(".", Arrays.copyOfRange(parts, k, parts.length)),
                        from, to)) {
                    return true;
                }
            }
        } else if (container instanceof List<?> raw) {
            List<Object> l = (List<Object>) raw;
            int i;
            try {
                i = Integer.parseInt(parts[0]);
            } catch (NumberFormatException e) {
                return false;
            }
            if (i < 0 || i >= l.size()) {
                return false;
            }
            if (parts.length == 1) {
                if (from.equals(l.get(i)) || isNodeNamed(l.get(i), from)) {
                    l.set(i, to);
                    return true;
                }
                return false;
            }
            return setReference(l.get(i), path.substring(parts[0].length() + 1), from, to);
        }
        return false;
    }

    /** A nested object that defines the node: a reference to it may replace it. */
    private static boolean isNodeNamed(Object value, String name) {
        return value instanceof Map<?, ?> m && name.equals(m.get("node-name"));
    }
}
