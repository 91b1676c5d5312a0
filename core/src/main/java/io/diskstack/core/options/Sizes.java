package io.diskstack.core.options;

import java.math.BigDecimal;
import java.util.Locale;

/** Byte sizes the way qemu-img writes them: {@code 1G}, {@code 512M}, {@code 1.5T}, {@code 4096}. */
public final class Sizes {
    private static final String SUFFIXES = "BKMGTPE";

    private Sizes() {}

    /**
     * Parses a size: digits with an optional fraction and an optional binary suffix
     * (B, K, M, G, T, P, E; case-insensitive; {@code KiB}-style spellings too).
     *
     * @throws IllegalArgumentException if the text is not a size or does not fit in a long
     */
    public static long parse(String text) {
        String s = text.trim();
        if (s.isEmpty()) {
            throw new IllegalArgumentException("empty size");
        }
        int end = s.length();
        String lower = s.toLowerCase(Locale.ROOT);
        if (lower.endsWith("ib") && end > 2) {
            end -= 2;
        }
        int shift = 0;
        char last = Character.toUpperCase(s.charAt(end - 1));
        int idx = SUFFIXES.indexOf(last);
        if (idx >= 0) {
            shift = 10 * idx;
            end--;
        } else if (end != s.length()) {
            throw new IllegalArgumentException("not a size: " + text);
        }
        String number = s.substring(0, end);
        if (number.isEmpty() || !number.matches("[0-9]+(\\.[0-9]+)?")) {
            throw new IllegalArgumentException("not a size: " + text);
        }
        BigDecimal bytes = new BigDecimal(number).multiply(BigDecimal.valueOf(2).pow(shift));
        if (bytes.stripTrailingZeros().scale() > 0) {
            throw new IllegalArgumentException("not a whole number of bytes: " + text);
        }
        try {
            return bytes.longValueExact();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("size too large: " + text);
        }
    }

    /** A short human form: {@code 1 GiB}, {@code 1.5 MiB}, {@code 1000 B}. */
    public static String format(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        if (v == Math.rint(v)) {
            return String.format(Locale.ROOT, "%d %s", (long) v, units[u]);
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
