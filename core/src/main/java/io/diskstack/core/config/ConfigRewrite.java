package io.diskstack.core.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.diskstack.core.ConfigException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Records graph changes in a JSON config file, so a remount opens the graph as it is now: an
 * external snapshot's overlays become {@code blockdev} entries, and every reference to a node
 * they replace (a parent's child option, an export's {@code node-name}) names the overlay.
 * The file is replaced atomically (temp file in the same folder, fsync, rename).
 */
public final class ConfigRewrite {
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT);

    private ConfigRewrite() {}

    /** One edge of the live graph into a replaced node: the parent's node-name and the edge's name. */
    public record ParentRef(String parent, String edge) {}

    /**
     * One overlay to record.
     *
     * @param base        the node the overlay replaces (an entry of its own, or a nested object
     *                    with that node-name, which becomes an entry of its own)
     * @param parents     the edges into {@code base} from other nodes, now pointing at the overlay
     * @param overlay     the overlay's node-name
     * @param fileNode    the overlay's file node's node-name
     * @param filename    the overlay's file as the config should name it
     * @param noFlush     give the file node {@code cache.no-flush}
     */
    public record Overlay(String base, List<ParentRef> parents, String overlay, String fileNode, String filename,
                          boolean noFlush) {}

    /**
     * The config text with the overlays recorded: their entries follow their base's, the bases
     * are marked read-only (they are backing files now; a base nested in its parent's entry
     * moves to an entry of its own, so read-only is all it inherited that matters), and
     * references to each base name the overlay instead.
     *
     * @throws ConfigException if the config does not name a base or a parent so that the
     *                         change can be written without guessing
     */
    @SuppressWarnings("unchecked")
    public static byte[] withOverlays(byte[] config, String where, List<Overlay> overlays) {
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
        List<Object> blockdevs = (List<Object>) top.get("blockdev");
        for (Overlay o : overlays) {
            int index = topLevelIndex(blockdevs, o.base());
            if (index < 0) {
                if (o.base().startsWith("#")) {
                    throw new ConfigException(where + ": node '" + o.base() + "' has no node-name there; give it one "
                            + "to take external snapshots");
                }
                // defined nested inside its parent's entry: make it an entry of its own, named there
                Map<String, Object> nested = null;
                for (Object entry : blockdevs) {
                    nested = hoist(entry, o.base());
                    if (nested != null) {
                        break;
                    }
                }
                if (nested == null) {
                    throw new ConfigException(where + ": does not define node '" + o.base() + "' in a blockdev entry "
                            + "or a nested object with that node-name");
                }
                blockdevs.add(nested);
                index = blockdevs.size() - 1;
            }
            for (ParentRef p : o.parents()) {
                Object parent = p.parent().startsWith("#") ? null : findNode(blockdevs, p.parent());
                if (parent == null) {
                    throw new ConfigException(where + ": node '" + o.base() + "' is used by '" + p.parent()
                            + "', which has no entry with that node-name there");
                }
                if (!setReference(parent, p.edge(), o.base(), o.overlay())) {
                    throw new ConfigException(where + ": the entry of node '" + p.parent() + "' does not name '"
                            + o.base() + "' as '" + p.edge() + "'");
                }
            }
            if (top.get("exports") instanceof List<?> exports) {
                for (Object e : exports) {
                    if (e instanceof Map<?, ?> m && o.base().equals(m.get("node-name"))) {
                        ((Map<String, Object>) m).put("node-name", o.overlay());
                    }
                }
            }
            Map<String, Object> base = (Map<String, Object>) blockdevs.get(index);
            base.put("read-only", Boolean.TRUE);
            Map<String, Object> file = new LinkedHashMap<>();
            file.put("driver", "file");
            file.put("node-name", o.fileNode());
            file.put("filename", o.filename());
            if (o.noFlush()) {
                file.put("cache.no-flush", Boolean.TRUE);
            }
            Map<String, Object> overlay = new LinkedHashMap<>();
            overlay.put("driver", "qcow2");
            overlay.put("node-name", o.overlay());
            overlay.put("file", o.fileNode());
            overlay.put("backing", o.base());
            blockdevs.add(index + 1, file);
            blockdevs.add(index + 2, overlay);
        }
        try {
            return (JSON.writeValueAsString(top) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ConfigException(where + ": cannot write it: " + e.getMessage());
        }
    }

    private static int topLevelIndex(List<Object> blockdevs, String name) {
        for (int i = 0; i < blockdevs.size(); i++) {
            if (blockdevs.get(i) instanceof Map<?, ?> m && name.equals(m.get("node-name"))) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Finds the nested object with this node-name below {@code entry} (not {@code entry} itself),
     * puts the node-name in its place, and returns it; null if there is none.
     */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> hoist(Object entry, String name) {
        if (entry instanceof Map<?, ?> raw) {
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
        } else if (entry instanceof List<?> raw) {
            List<Object> l = (List<Object>) raw;
            for (int i = 0; i < l.size(); i++) {
                if (l.get(i) instanceof Map<?, ?> child && name.equals(child.get("node-name"))) {
                    l.set(i, name);
                    return (Map<String, Object>) child;
                }
                Map<String, Object> found = hoist(l.get(i), name);
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
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
                String key = String.join(".", java.util.Arrays.copyOfRange(parts, 0, k));
                if (!m.containsKey(key)) {
                    continue;
                }
                if (k == parts.length) {
                    if (from.equals(m.get(key))) {
                        m.put(key, to);
                        return true;
                    }
                } else if (setReference(m.get(key), String.join(".", java.util.Arrays.copyOfRange(parts, k,
                        parts.length)), from, to)) {
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
                if (from.equals(l.get(i))) {
                    l.set(i, to);
                    return true;
                }
                return false;
            }
            return setReference(l.get(i), path.substring(parts[0].length() + 1), from, to);
        }
        return false;
    }

    /**
     * Replaces {@code file} by {@code content} atomically: a temp file in the same folder with
     * the same permissions, written and synced, renamed over it, and the folder synced.
     */
    public static void writeAtomically(Path file, byte[] content) throws IOException {
        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Path tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
        try {
            PosixFileAttributeView view = Files.getFileAttributeView(target, PosixFileAttributeView.class);
            if (view != null && Files.exists(target)) {
                Files.setPosixFilePermissions(tmp, view.readAttributes().permissions());
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer b = ByteBuffer.wrap(content);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                ch.force(true);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        syncFolder(dir);
    }

    /** Makes the folder's entries (a new file, a rename) durable, where the file system can. */
    static void syncFolder(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException e) {
            // some file systems cannot sync a folder; the entries are written either way
        }
    }

    /** The parent edges of the live graph, as config references. */
    static List<ParentRef> refs(List<io.diskstack.core.BlockChild> edges) {
        List<ParentRef> out = new ArrayList<>();
        for (var e : edges) {
            if (e.parent() != null) {
                out.add(new ParentRef(e.parent().nodeName(), e.name()));
            }
        }
        return out;
    }
}
