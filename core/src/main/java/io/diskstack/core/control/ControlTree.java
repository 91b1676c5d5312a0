package io.diskstack.core.control;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.logging.Logger;

/**
 * The control tree as the providers declare it now: every file by its path relative to
 * {@code .control}, every folder with its entries ({@code ""} is the top), and a
 * {@code last-error} file in each folder. Built whole and never changed, so a front end can keep
 * it until {@link #version} says something changed.
 */
public final class ControlTree {
    private static final Logger LOG = Logger.getLogger(ControlTree.class.getName());
    static final String LAST_ERROR = "last-error";

    private final Map<String, ControlFile> files;
    private final Map<String, Set<String>> folders;

    private ControlTree(Map<String, ControlFile> files, Map<String, Set<String>> folders) {
        this.files = files;
        this.folders = folders;
    }

    /**
     * What the tree depends on, as one number that only grows: the graph's and the objects'
     * generations and each provider's. A front end rebuilds when it differs from the last build's.
     */
    public static long version(List<ControlTreeProvider> providers, ControlContext context) {
        long v = context.stack().graph().generation() + context.stack().objects().generation();
        for (ControlTreeProvider p : providers) {
            v += p.generation(context);
        }
        return v;
    }

    /** Asks every provider for its files; a path two providers declare keeps the first one's. */
    public static ControlTree build(List<ControlTreeProvider> providers, ControlContext context, LastErrors errors) {
        Map<String, ControlFile> files = new TreeMap<>();
        Map<String, Set<String>> folders = new TreeMap<>();
        folders.put("", new TreeSet<>());
        for (ControlTreeProvider p : providers) {
            for (Map.Entry<String, ControlFile> f : p.files(context).entrySet()) {
                String path = f.getKey();
                if (files.putIfAbsent(path, f.getValue()) != null) {
                    LOG.warning("control file '" + path + "' is declared twice; "
                            + p.getClass().getSimpleName() + "'s is not shown");
                    continue;
                }
                addToFolders(folders, path);
            }
        }
        for (String folder : new ArrayList<>(folders.keySet())) {
            files.put(child(folder, LAST_ERROR), errors.file(folder));
            folders.get(folder).add(LAST_ERROR);
        }
        folders.replaceAll((k, v) -> Collections.unmodifiableSet(v));
        return new ControlTree(Collections.unmodifiableMap(files), Collections.unmodifiableMap(folders));
    }

    private static void addToFolders(Map<String, Set<String>> folders, String path) {
        String child = path;
        while (true) {
            String parent = parentOf(child);
            folders.computeIfAbsent(parent, k -> new TreeSet<>()).add(child.substring(parent.isEmpty() ? 0
                    : parent.length() + 1));
            if (parent.isEmpty()) {
                return;
            }
            child = parent;
        }
    }

    /** The folder a path is in: {@code disk0} for {@code disk0/stats}, {@code ""} for {@code graph}. */
    public static String parentOf(String path) {
        int slash = path.lastIndexOf('/');
        return slash < 0 ? "" : path.substring(0, slash);
    }

    private static String child(String folder, String name) {
        return folder.isEmpty() ? name : folder + "/" + name;
    }

    /** Every file, by path relative to {@code .control}. */
    public Map<String, ControlFile> files() {
        return files;
    }

    /** Every folder ({@code ""} is {@code .control} itself) with the names in it, sorted. */
    public Map<String, Set<String>> folders() {
        return folders;
    }

    /** The top-level names the providers reserve, and {@code last-error}. */
    public static Set<String> reservedNames(List<ControlTreeProvider> providers) {
        Set<String> names = new TreeSet<>();
        names.add(LAST_ERROR);
        for (ControlTreeProvider p : providers) {
            names.addAll(p.reservedNames());
        }
        return names;
    }
}
