package io.diskstack.core.options;

import io.diskstack.core.ConfigException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A consuming reader over one node's (or object's) options: each getter marks its key used, and
 * {@link #assertAllConsumed()} rejects whatever is left, so a typo never passes silently. Every
 * error names the owner and the key: {@code blockdev 't0' (throttle): 'bps-total' value '12x' is
 * not a size}.
 */
public final class NodeOptions {
    private final String owner;
    private final Map<String, Object> values;
    private final Set<String> consumed = new HashSet<>();

    /**
     * @param owner  how messages name the owner, e.g. {@code blockdev 'f0' (file)}
     * @param values flat options (see {@link OptionTree})
     */
    public NodeOptions(String owner, Map<String, Object> values) {
        this.owner = owner;
        this.values = new LinkedHashMap<>(values);
    }

    public String owner() {
        return owner;
    }

    /** True if the key, or any key under {@code key.}, is present (used or not). */
    public boolean has(String key) {
        if (values.containsKey(key)) {
            return true;
        }
        String prefix = key + ".";
        return values.keySet().stream().anyMatch(k -> k.startsWith(prefix));
    }

    public String requireString(String key) {
        String s = optString(key, null);
        if (s == null) {
            throw error(key, "is required");
        }
        return s;
    }

    public String optString(String key, String defaultValue) {
        Object v = take(key);
        if (v == null) {
            return defaultValue;
        }
        if (v instanceof String s) {
            return s;
        }
        if (v instanceof Long || v instanceof Boolean) {
            return v.toString();
        }
        throw error(key, "must be a string");
    }

    public boolean optBool(String key, boolean defaultValue) {
        Object v = take(key);
        if (v == null) {
            return defaultValue;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        if (v instanceof String s) {
            switch (s.toLowerCase(Locale.ROOT)) {
                case "on", "true", "yes":
                    return true;
                case "off", "false", "no":
                    return false;
                default:
                    break;
            }
        }
        throw error(key, "value '" + v + "' is not on/off (or true/false)");
    }

    public long optLong(String key, long defaultValue) {
        return optLong(key, defaultValue, Long.MIN_VALUE, Long.MAX_VALUE);
    }

    public long optLong(String key, long defaultValue, long min, long max) {
        Object v = take(key);
        if (v == null) {
            return defaultValue;
        }
        long n;
        if (v instanceof Long l) {
            n = l;
        } else if (v instanceof Double d && d == Math.rint(d) && !d.isInfinite()) {
            n = d.longValue();
        } else if (v instanceof String s && s.trim().matches("-?[0-9]+")) {
            try {
                n = Long.parseLong(s.trim());
            } catch (NumberFormatException e) {
                throw error(key, "value '" + v + "' is out of range");
            }
        } else {
            throw error(key, "value '" + v + "' is not an integer");
        }
        if (n < min || n > max) {
            throw error(key, "value " + n + " is out of range " + rangeText(min, max));
        }
        return n;
    }

    /** A byte count: a number or a string like {@code 64K} or {@code 1.5G}. */
    public long optSize(String key, long defaultValue) {
        Object v = take(key);
        if (v == null) {
            return defaultValue;
        }
        if (v instanceof Long l && l >= 0) {
            return l;
        }
        if (v instanceof Double d && d >= 0 && d == Math.rint(d)) {
            return d.longValue();
        }
        if (v instanceof String s) {
            try {
                return Sizes.parse(s);
            } catch (IllegalArgumentException e) {
                throw error(key, "value '" + s + "' is not a size");
            }
        }
        throw error(key, "value '" + v + "' is not a size");
    }

    /** A non-negative decimal number, such as a rate limit. */
    public double optDouble(String key, double defaultValue, double min) {
        Object v = take(key);
        if (v == null) {
            return defaultValue;
        }
        double d;
        if (v instanceof Number num) {
            d = num.doubleValue();
        } else if (v instanceof String s && s.trim().matches("-?[0-9]+(\\.[0-9]+)?")) {
            d = Double.parseDouble(s.trim());
        } else {
            throw error(key, "value '" + v + "' is not a number");
        }
        if (d < min || Double.isNaN(d)) {
            throw error(key, "value " + v + " is below " + min);
        }
        return d;
    }

    /** One of the enum's constants, spelled in lower case with '-' for '_' (QEMU's style). */
    public <E extends Enum<E>> E optEnum(String key, Class<E> type, E defaultValue) {
        String s = optString(key, null);
        if (s == null) {
            return defaultValue;
        }
        List<String> names = new ArrayList<>();
        for (E e : type.getEnumConstants()) {
            String name = qemuName(e);
            if (name.equals(s)) {
                return e;
            }
            names.add(name);
        }
        throw error(key, "value '" + s + "' is not one of " + String.join(", ", names));
    }

    /** The QEMU spelling of an enum constant: {@code READ_ONLY} → {@code read-only}. */
    public static String qemuName(Enum<?> e) {
        return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    /**
     * A child given either as a node-name (a String) or as nested options (a flat Map), or null if
     * absent. Consumes {@code key} and everything under {@code key.}.
     */
    public Object takeChild(String key) {
        consumed.add(key);
        Object direct = values.get(key);
        Map<String, Object> nested = takeGroup(key);
        if (direct != null && !nested.isEmpty()) {
            throw error(key, "is given both as a node-name and as nested options");
        }
        if (direct != null) {
            if (!(direct instanceof String)) {
                throw error(key, "must be a node-name or an object");
            }
            return direct;
        }
        return nested.isEmpty() ? null : nested;
    }

    /**
     * A list given as {@code key.0}, {@code key.1}, … (a JSON array flattens to this), each element
     * a scalar or nested options. Empty if absent.
     */
    public List<Object> takeList(String key) {
        List<Object> out = new ArrayList<>();
        if (values.containsKey(key)) {
            throw error(key, "must be a list");
        }
        Set<String> all = new TreeSet<>();
        String prefix = key + ".";
        for (String k : values.keySet()) {
            if (k.startsWith(prefix)) {
                all.add(k.substring(prefix.length()).split("\\.", 2)[0]);
            }
        }
        for (String index : all) {
            if (!index.matches("[0-9]+")) {
                throw error(prefix + index, "is not a list index");
            }
        }
        for (int i = 0; i < all.size(); i++) {
            if (!all.contains(Integer.toString(i))) {
                throw error(prefix + i, "is missing: list indexes must run 0, 1, 2, …");
            }
            out.add(takeChild(prefix + i));
        }
        return out;
    }

    /** All options under {@code prefix.}, consumed, with the prefix stripped. */
    public Map<String, Object> takeGroup(String prefix) {
        Map<String, Object> sub = OptionTree.subtree(values, prefix);
        for (String k : sub.keySet()) {
            consumed.add(prefix + "." + k);
        }
        return sub;
    }

    /** Keys not read yet. */
    public List<String> unconsumed() {
        List<String> left = new ArrayList<>();
        for (String k : values.keySet()) {
            if (!consumed.contains(k)) {
                left.add(k);
            }
        }
        return left;
    }

    public void assertAllConsumed() {
        List<String> left = unconsumed();
        if (!left.isEmpty()) {
            throw new ConfigException(owner + ": unknown option '" + left.get(0) + "'");
        }
    }

    /** An error naming the owner and the key. */
    public ConfigException error(String key, String problem) {
        return new ConfigException(owner + ": '" + key + "' " + problem);
    }

    private Object take(String key) {
        consumed.add(key);
        Object v = values.get(key);
        if (v == null && has(key)) {
            throw error(key, "must be a single value, not an object");
        }
        return v;
    }

    private static String rangeText(long min, long max) {
        return "[" + (min == Long.MIN_VALUE ? "" : min) + ", " + (max == Long.MAX_VALUE ? "" : max) + "]";
    }
}
