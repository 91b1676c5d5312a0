package io.diskstack.core.control;

import java.util.Locale;

/**
 * Writes Prometheus's text exposition format (version 0.0.4): each family once, its
 * {@code # HELP} and {@code # TYPE} lines first, then all its samples together.
 */
final class PrometheusText {
    private final StringBuilder out = new StringBuilder();

    /** Starts a family; every sample until the next call belongs to it. */
    PrometheusText family(String name, String type, String help) {
        out.append("# HELP ").append(name).append(' ').append(help.replace("\\", "\\\\").replace("\n", "\\n"))
                .append('\n');
        out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        return this;
    }

    /** One sample; {@code labels} are name, value pairs. */
    PrometheusText sample(String name, long value, String... labels) {
        return sample(name, Long.toString(value), labels);
    }

    PrometheusText sample(String name, double value, String... labels) {
        return sample(name, formatDouble(value), labels);
    }

    private PrometheusText sample(String name, String value, String... labels) {
        out.append(name);
        if (labels.length > 0) {
            out.append('{');
            for (int i = 0; i < labels.length; i += 2) {
                if (i > 0) {
                    out.append(',');
                }
                out.append(labels[i]).append("=\"").append(escape(labels[i + 1])).append('"');
            }
            out.append('}');
        }
        out.append(' ').append(value).append('\n');
        return this;
    }

    static String escape(String labelValue) {
        return labelValue.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    /** A float as Prometheus writes one: {@code 0.00025}, {@code 1}, {@code +Inf}. */
    static String formatDouble(double v) {
        if (Double.isInfinite(v)) {
            return v > 0 ? "+Inf" : "-Inf";
        }
        if (Double.isNaN(v)) {
            return "NaN";
        }
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        return new java.math.BigDecimal(Double.toString(v)).stripTrailingZeros().toPlainString()
                .toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return out.toString();
    }
}
