package io.diskstack.core.info;

import java.math.BigDecimal;
import java.math.MathContext;

/** Sizes as qemu-img prints them: three significant digits and a binary unit ({@code 204 KiB}, {@code 1.5 GiB}). */
final class QemuSize {
    private static final String[] UNITS = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

    private QemuSize() {}

    static String format(long bytes) {
        int unit = 0;
        // the next unit once the number would reach 1000 (so 1000 bytes is 0.977 KiB)
        while (unit < UNITS.length - 1 && bytes >= 1000L * (1L << (10 * unit))) {
            unit++;
        }
        BigDecimal value = BigDecimal.valueOf(bytes).divide(BigDecimal.valueOf(1L << (10 * unit)),
                new MathContext(3));
        String n = value.stripTrailingZeros().toPlainString();
        return n + " " + UNITS[unit];
    }
}
