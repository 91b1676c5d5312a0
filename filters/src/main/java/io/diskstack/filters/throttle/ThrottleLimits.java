package io.diskstack.filters.throttle;

import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.Sizes;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;

/**
 * The limits of a throttle group, as QEMU's {@code ThrottleLimits}: for each of the six buckets
 * ({@code bps-total}, {@code bps-read}, {@code bps-write}, {@code iops-total}, …) a rate, a
 * {@code -max} burst rate and a {@code -max-length} in seconds; and {@code iops-size}. Immutable:
 * a change makes a new one, checked with {@link #problem} before it is used.
 */
public final class ThrottleLimits {
    /** QEMU's THROTTLE_VALUE_MAX. */
    static final long VALUE_MAX = 1_000_000_000_000_000L;

    /** The six buckets, in QEMU's order. */
    enum Bucket {
        BPS_TOTAL, BPS_READ, BPS_WRITE, IOPS_TOTAL, IOPS_READ, IOPS_WRITE;

        final String key = name().toLowerCase(Locale.ROOT).replace('_', '-');

        boolean countsBytes() {
            return ordinal() < 3;
        }

        boolean isTotal() {
            return this == BPS_TOTAL || this == IOPS_TOTAL;
        }

        /** True if requests in this direction fill the bucket. */
        boolean applies(boolean write) {
            return isTotal() || (this == BPS_WRITE || this == IOPS_WRITE) == write;
        }
    }

    static final ThrottleLimits NONE = new ThrottleLimits(new long[6], new long[6], ones(), 0);

    /** Every key, in QEMU's order: {@code bps-total}, {@code bps-total-max}, … {@code iops-size}. */
    static final List<String> KEYS;

    static {
        List<String> keys = new ArrayList<>();
        for (Bucket b : Bucket.values()) {
            keys.add(b.key);
            keys.add(b.key + "-max");
            keys.add(b.key + "-max-length");
        }
        keys.add("iops-size");
        KEYS = Collections.unmodifiableList(keys);
    }

    private final long[] avg;
    private final long[] max;
    private final long[] maxLength;
    private final long iopsSize;

    private ThrottleLimits(long[] avg, long[] max, long[] maxLength, long iopsSize) {
        this.avg = avg;
        this.max = max;
        this.maxLength = maxLength;
        this.iopsSize = iopsSize;
    }

    long avg(Bucket b) {
        return avg[b.ordinal()];
    }

    long max(Bucket b) {
        return max[b.ordinal()];
    }

    long maxLength(Bucket b) {
        return maxLength[b.ordinal()];
    }

    long iopsSize() {
        return iopsSize;
    }

    /** True if no bucket has a rate: the throttle lets everything through untouched. */
    boolean isUnlimited() {
        for (long a : avg) {
            if (a != 0) {
                return false;
            }
        }
        return true;
    }

    /** The value of one key of {@link #KEYS}. */
    long get(String key) {
        if (key.equals("iops-size")) {
            return iopsSize;
        }
        Slot s = slot(key);
        return s.array(this)[s.bucket.ordinal()];
    }

    /** A copy with one key of {@link #KEYS} changed; check it with {@link #problem}. */
    ThrottleLimits with(String key, long value) {
        long[] a = avg.clone();
        long[] m = max.clone();
        long[] l = maxLength.clone();
        long size = iopsSize;
        if (key.equals("iops-size")) {
            size = value;
        } else {
            Slot s = slot(key);
            s.array(a, m, l)[s.bucket.ordinal()] = value;
        }
        return new ThrottleLimits(a, m, l, size);
    }

    /**
     * What is wrong with these limits (QEMU's throttle_is_valid), as {@code 'KEY' problem} with
     * keys spelled by {@code spell}; null if they are usable.
     */
    String problem(UnaryOperator<String> spell) {
        for (Bucket b : Bucket.values()) {
            int i = b.ordinal();
            String rate = spell.apply(b.key);
            String burst = spell.apply(b.key + "-max");
            String length = spell.apply(b.key + "-max-length");
            if (avg[i] < 0 || avg[i] > VALUE_MAX) {
                return "'" + rate + "' value " + avg[i] + " is out of range [0, " + VALUE_MAX + "]";
            }
            if (max[i] < 0 || max[i] > VALUE_MAX) {
                return "'" + burst + "' value " + max[i] + " is out of range [0, " + VALUE_MAX + "]";
            }
            if (maxLength[i] < 1 || maxLength[i] > VALUE_MAX) {
                return "'" + length + "' value " + maxLength[i] + " is out of range [1, " + VALUE_MAX + "]";
            }
            if (max[i] != 0 && avg[i] == 0) {
                return "'" + burst + "' needs '" + rate + "' to be set too";
            }
            if (max[i] != 0 && max[i] < avg[i]) {
                return "'" + burst + "' value " + max[i] + " is lower than '" + rate + "' " + avg[i];
            }
            if (maxLength[i] > 1 && max[i] == 0) {
                return "'" + length + "' needs '" + burst + "' to be set too";
            }
            if (max[i] != 0 && maxLength[i] > VALUE_MAX / max[i]) {
                return "'" + length + "' value " + maxLength[i] + " is too long for '" + burst + "' " + max[i];
            }
        }
        for (int total : new int[] {Bucket.BPS_TOTAL.ordinal(), Bucket.IOPS_TOTAL.ordinal()}) {
            for (int part = total + 1; part <= total + 2; part++) {
                if ((avg[total] != 0 || max[total] != 0) && (avg[part] != 0 || max[part] != 0)) {
                    String k = Bucket.values()[part].key;
                    return "'" + spell.apply(avg[part] != 0 ? k : k + "-max") + "' cannot be used together with '"
                            + spell.apply(Bucket.values()[total].key) + "'";
                }
            }
        }
        if (iopsSize < 0 || iopsSize > VALUE_MAX) {
            return "'" + spell.apply("iops-size") + "' value " + iopsSize + " is out of range [0, " + VALUE_MAX + "]";
        }
        if (iopsSize != 0 && avg[Bucket.IOPS_TOTAL.ordinal()] == 0 && avg[Bucket.IOPS_READ.ordinal()] == 0
                && avg[Bucket.IOPS_WRITE.ordinal()] == 0) {
            return "'" + spell.apply("iops-size") + "' needs an iops limit to be set too";
        }
        return null;
    }

    /**
     * Reads the limits of a {@code throttle-group} object: {@code limits.KEY} as QEMU documents
     * them, or QEMU's unstable {@code x-KEY} aliases (not both for one key).
     *
     * @throws io.diskstack.core.ConfigException naming the object and the key
     */
    static ThrottleLimits read(NodeOptions o) {
        ThrottleLimits limits = NONE;
        java.util.Map<String, String> spelled = new java.util.HashMap<>();
        for (String key : KEYS) {
            String nested = "limits." + key;
            String alias = "x-" + key;
            if (o.has(nested) && o.has(alias)) {
                throw o.error(alias, "and '" + nested + "' set the same limit: give one");
            }
            String used = o.has(alias) ? alias : nested;
            spelled.put(key, used);
            if (o.has(used)) {
                limits = limits.with(key, readValue(o, used, key));
            }
        }
        String problem = limits.problem(k -> spelled.getOrDefault(k, k));
        if (problem != null) {
            throw new io.diskstack.core.ConfigException(o.owner() + ": " + problem);
        }
        return limits;
    }

    private static long readValue(NodeOptions o, String optionKey, String key) {
        return countsBytes(key) ? o.optSize(optionKey, 0) : o.optLong(optionKey, 0, 0, VALUE_MAX);
    }

    /**
     * Parses a value written to a control file: an integer, or for byte rates and
     * {@code iops-size} also a size such as {@code 10M}.
     *
     * @throws IllegalArgumentException with a message naming the key
     */
    static long parseValue(String key, String text) {
        String t = text.trim();
        try {
            if (countsBytes(key)) {
                return Sizes.parse(t);
            }
            if (!t.matches("[0-9]+")) {
                throw new IllegalArgumentException();
            }
            return Long.parseLong(t);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + key + "' value '" + t + "' is not "
                    + (countsBytes(key) ? "a size" : "a non-negative integer"));
        }
    }

    private static boolean countsBytes(String key) {
        return key.startsWith("bps-") && !key.endsWith("-max-length") || key.equals("iops-size");
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (String key : KEYS) {
            long v = get(key);
            boolean isDefault = key.endsWith("-max-length") ? v == 1 : v == 0;
            if (!isDefault) {
                sb.append(sb.length() == 0 ? "" : " ").append(key).append('=').append(v);
            }
        }
        return sb.length() == 0 ? "unlimited" : sb.toString();
    }

    private static long[] ones() {
        long[] a = new long[6];
        java.util.Arrays.fill(a, 1);
        return a;
    }

    private record Slot(Bucket bucket, int field) {
        long[] array(ThrottleLimits l) {
            return array(l.avg, l.max, l.maxLength);
        }

        long[] array(long[] a, long[] m, long[] l) {
            return field == 0 ? a : field == 1 ? m : l;
        }
    }

    private static Slot slot(String key) {
        for (Bucket b : Bucket.values()) {
            if (key.equals(b.key)) {
                return new Slot(b, 0);
            }
            if (key.equals(b.key + "-max")) {
                return new Slot(b, 1);
            }
            if (key.equals(b.key + "-max-length")) {
                return new Slot(b, 2);
            }
        }
        throw new IllegalArgumentException("no throttle limit '" + key + "'");
    }
}
