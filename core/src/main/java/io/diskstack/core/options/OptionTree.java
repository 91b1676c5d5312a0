package io.diskstack.core.options;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Options as QEMU keeps them: one flat map of dotted keys ({@code file.filename},
 * {@code children.0}, {@code limits.bps-total}) to scalar values (String, Boolean, Long, Double).
 * JSON objects and arrays flatten into it; the command line's dotted keys already are it.
 */
public final class OptionTree {
    private OptionTree() {}

    /**
     * Flattens nested maps and lists into dotted keys; dotted keys already in the input stay.
     *
     * A JSON {@code null} flattens to the empty string: QEMU's way of saying "none" for an
     * optional child ({@code "backing": null} opens an image without its backing file), which
     * drivers read as an empty node reference.
     *
     * @throws IllegalArgumentException naming the key if it is set twice
     */
    public static Map<String, Object> flatten(Map<String, ?> nested) {
        Map<String, Object> flat = new LinkedHashMap<>();
        flattenInto(flat, "", nested);
        return flat;
    }

    private static void flattenInto(Map<String, Object> flat, String prefix, Object value) {
        if (value instanceof Map<?, ?> map) {
            for (Map.Entry<?, ?> e : map.entrySet()) {
                flattenInto(flat, prefix + e.getKey() + ".", e.getValue());
            }
        } else if (value instanceof List<?> list) {
            for (int i = 0; i < list.size(); i++) {
                flattenInto(flat, prefix + i + ".", list.get(i));
            }
        } else {
            String key = prefix.substring(0, prefix.length() - 1);
            if (value == null) {
                value = "";
            }
            if (value instanceof Integer || value instanceof Short || value instanceof Byte) {
                value = ((Number) value).longValue();
            }
            put(flat, key, value);
        }
    }

    private static void put(Map<String, Object> flat, String key, Object value) {
        if (flat.containsKey(key)) {
            throw new IllegalArgumentException("'" + key + "' is set twice");
        }
        for (String existing : flat.keySet()) {
            if (existing.startsWith(key + ".") || key.startsWith(existing + ".")) {
                throw new IllegalArgumentException("'" + key + "' conflicts with '" + existing + "'");
            }
        }
        flat.put(key, value);
    }

    /**
     * The nested form of flat options, as a config file would write them: {@code file.filename}
     * becomes {@code "file": {"filename": …}} and {@code children.0}, {@code children.1} a list.
     * Flattening the result gives the input back.
     */
    public static Map<String, Object> unflatten(Map<String, Object> flat) {
        Map<String, Object> root = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : flat.entrySet()) {
            String[] parts = e.getKey().split("\\.");
            Map<String, Object> at = root;
            for (int i = 0; i < parts.length - 1; i++) {
                @SuppressWarnings("unchecked")
                Map<String, Object> next = (Map<String, Object>) at.computeIfAbsent(parts[i], k -> new LinkedHashMap<>());
                at = next;
            }
            at.put(parts[parts.length - 1], e.getValue());
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> out = (Map<String, Object>) listify(root);
        return out;
    }

    /** Maps whose keys are exactly 0, 1, …, n-1 become lists. */
    private static Object listify(Object value) {
        if (!(value instanceof Map<?, ?> map)) {
            return value;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        map.forEach((k, v) -> out.put((String) k, listify(v)));
        boolean indexed = !out.isEmpty();
        for (int i = 0; i < out.size() && indexed; i++) {
            indexed = out.containsKey(Integer.toString(i));
        }
        if (indexed) {
            java.util.List<Object> list = new java.util.ArrayList<>();
            for (int i = 0; i < out.size(); i++) {
                list.add(out.get(Integer.toString(i)));
            }
            return list;
        }
        return out;
    }

    /** The options under {@code prefix.}, with the prefix taken off their keys. */
    public static Map<String, Object> subtree(Map<String, Object> flat, String prefix) {
        Map<String, Object> sub = new LinkedHashMap<>();
        String p = prefix + ".";
        for (Map.Entry<String, Object> e : flat.entrySet()) {
            if (e.getKey().startsWith(p)) {
                sub.put(e.getKey().substring(p.length()), e.getValue());
            }
        }
        return sub;
    }
}
