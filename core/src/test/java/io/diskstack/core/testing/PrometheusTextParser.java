package io.diskstack.core.testing;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * A strict parser of Prometheus's text exposition format 0.0.4, for tests: it throws on anything
 * a scraper could reject or misread. Checked: the syntax of names, labels, escapes and values;
 * one HELP and one TYPE per family, before its samples; each family's samples together; sample
 * names that fit the family's type; no series twice; counters not negative; and for histograms,
 * increasing {@code le} bounds with cumulative counts, a {@code +Inf} bucket equal to
 * {@code _count}, and a {@code _sum}.
 */
public final class PrometheusTextParser {
    private static final Pattern METRIC = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");
    private static final Pattern LABEL = Pattern.compile("[a-zA-Z_][a-zA-Z0-9_]*");
    private static final Set<String> TYPES = Set.of("counter", "gauge", "histogram", "summary", "untyped");

    /** One sample line. */
    public record Sample(String name, Map<String, String> labels, double value) {}

    /** One family: its type, help and samples in order. */
    public record Family(String name, String type, String help, List<Sample> samples) {
        /** The value of the one sample with this name and these labels (a subset of its labels). */
        public double value(String sampleName, String... labels) {
            Double found = null;
            for (Sample s : samples) {
                if (s.name().equals(sampleName) && matches(s.labels(), labels)) {
                    if (found != null) {
                        throw new AssertionError("more than one sample " + sampleName + " matches " + List.of(labels));
                    }
                    found = s.value();
                }
            }
            if (found == null) {
                throw new AssertionError("no sample " + sampleName + " with " + List.of(labels) + " in " + name);
            }
            return found;
        }

        private static boolean matches(Map<String, String> have, String[] want) {
            for (int i = 0; i < want.length; i += 2) {
                if (!want[i + 1].equals(have.get(want[i]))) {
                    return false;
                }
            }
            return true;
        }
    }

    private PrometheusTextParser() {}

    /** The families by name, in order of appearance; throws {@link IllegalArgumentException} on any error. */
    public static Map<String, Family> parse(String text) {
        if (!text.isEmpty() && !text.endsWith("\n")) {
            throw new IllegalArgumentException("the last line does not end with a newline");
        }
        Map<String, Family> families = new LinkedHashMap<>();
        Map<String, String> help = new HashMap<>();
        Set<String> closed = new HashSet<>();
        Set<String> series = new HashSet<>();
        String current = null;
        int lineNo = 0;
        String body = text.isEmpty() ? "" : text.substring(0, text.length() - 1);
        for (String line : text.isEmpty() ? new String[0] : body.split("\n", -1)) {
            lineNo++;
            String at = "line " + lineNo + ": ";
            if (line.isEmpty()) {
                throw new IllegalArgumentException(at + "empty line");
            }
            if (line.startsWith("#")) {
                String[] f = line.split(" ", 4);
                if (f.length >= 3 && (f[1].equals("HELP") || f[1].equals("TYPE"))) {
                    String name = f[2];
                    if (!METRIC.matcher(name).matches()) {
                        throw new IllegalArgumentException(at + "bad metric name '" + name + "'");
                    }
                    if (closed.contains(name) || (families.containsKey(name) && !families.get(name).samples().isEmpty())) {
                        throw new IllegalArgumentException(at + f[1] + " of '" + name + "' after its samples");
                    }
                    if (current != null && !current.equals(name)) {
                        closed.add(current);
                    }
                    current = name;
                    if (f[1].equals("HELP")) {
                        if (help.put(name, f.length > 3 ? unescapeHelp(f[3], at) : "") != null) {
                            throw new IllegalArgumentException(at + "second HELP for '" + name + "'");
                        }
                    } else {
                        if (f.length != 4 || !TYPES.contains(f[3])) {
                            throw new IllegalArgumentException(at + "bad TYPE line");
                        }
                        if (families.containsKey(name)) {
                            throw new IllegalArgumentException(at + "second TYPE for '" + name + "'");
                        }
                        families.put(name, new Family(name, f[3], help.getOrDefault(name, ""), new ArrayList<>()));
                    }
                }
                continue;
            }
            Sample s = sample(line, at);
            Family family = familyOf(s.name(), families);
            if (family == null) {
                throw new IllegalArgumentException(at + "sample '" + s.name() + "' has no TYPE line before it");
            }
            if (closed.contains(family.name()) || (current != null && !current.equals(family.name()))) {
                throw new IllegalArgumentException(at + "samples of '" + family.name() + "' are not together");
            }
            current = family.name();
            if (!series.add(s.name() + new TreeMap<>(s.labels()))) {
                throw new IllegalArgumentException(at + "series " + s.name() + s.labels() + " appears twice");
            }
            if (family.type().equals("counter") && !(s.value() >= 0)) {
                throw new IllegalArgumentException(at + "counter " + s.name() + " is negative or NaN");
            }
            family.samples().add(s);
        }
        for (Family f : families.values()) {
            if (f.type().equals("histogram")) {
                checkHistogram(f);
            }
        }
        return families;
    }

    private static Family familyOf(String sampleName, Map<String, Family> families) {
        Family exact = families.get(sampleName);
        if (exact != null && !exact.type().equals("histogram") && !exact.type().equals("summary")) {
            return exact;
        }
        for (String suffix : new String[] {"_bucket", "_sum", "_count"}) {
            if (sampleName.endsWith(suffix)) {
                Family f = families.get(sampleName.substring(0, sampleName.length() - suffix.length()));
                if (f != null && (f.type().equals("histogram") || (f.type().equals("summary") && !suffix.equals("_bucket")))) {
                    return f;
                }
            }
        }
        return exact != null && exact.type().equals("summary") ? exact : null;
    }

    private static void checkHistogram(Family f) {
        Map<Map<String, String>, List<Sample>> buckets = new LinkedHashMap<>();
        Map<Map<String, String>, Double> counts = new HashMap<>();
        Set<Map<String, String>> sums = new HashSet<>();
        for (Sample s : f.samples()) {
            Map<String, String> key = new TreeMap<>(s.labels());
            if (s.name().endsWith("_bucket")) {
                if (key.remove("le") == null) {
                    throw new IllegalArgumentException(f.name() + ": bucket without le " + s.labels());
                }
                buckets.computeIfAbsent(key, k -> new ArrayList<>()).add(s);
            } else if (s.name().endsWith("_count")) {
                counts.put(key, s.value());
            } else if (s.name().endsWith("_sum")) {
                sums.add(key);
            } else {
                throw new IllegalArgumentException(f.name() + ": unexpected sample " + s.name());
            }
        }
        for (Map.Entry<Map<String, String>, List<Sample>> e : buckets.entrySet()) {
            double lastLe = Double.NEGATIVE_INFINITY;
            double lastCount = 0;
            for (Sample b : e.getValue()) {
                double le = parseValue(b.labels().get("le"), f.name() + " le");
                if (!(le > lastLe)) {
                    throw new IllegalArgumentException(f.name() + e.getKey() + ": le " + le + " does not increase");
                }
                if (b.value() < lastCount) {
                    throw new IllegalArgumentException(f.name() + e.getKey() + ": bucket counts are not cumulative");
                }
                lastLe = le;
                lastCount = b.value();
            }
            if (lastLe != Double.POSITIVE_INFINITY) {
                throw new IllegalArgumentException(f.name() + e.getKey() + ": no +Inf bucket");
            }
            Double count = counts.get(e.getKey());
            if (count == null || count != lastCount) {
                throw new IllegalArgumentException(f.name() + e.getKey() + ": _count " + count + " is not the +Inf bucket "
                        + lastCount);
            }
            if (!sums.contains(e.getKey())) {
                throw new IllegalArgumentException(f.name() + e.getKey() + ": no _sum");
            }
        }
        if (!counts.keySet().equals(buckets.keySet())) {
            throw new IllegalArgumentException(f.name() + ": _count series without buckets");
        }
    }

    private static Sample sample(String line, String at) {
        int i = 0;
        while (i < line.length() && line.charAt(i) != '{' && line.charAt(i) != ' ') {
            i++;
        }
        String name = line.substring(0, i);
        if (!METRIC.matcher(name).matches()) {
            throw new IllegalArgumentException(at + "bad metric name '" + name + "'");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        if (i < line.length() && line.charAt(i) == '{') {
            i++;
            while (true) {
                if (i < line.length() && line.charAt(i) == '}') {
                    i++;
                    break;
                }
                int eq = line.indexOf('=', i);
                if (eq < 0) {
                    throw new IllegalArgumentException(at + "label without '='");
                }
                String label = line.substring(i, eq);
                if (!LABEL.matcher(label).matches() || label.startsWith("__")) {
                    throw new IllegalArgumentException(at + "bad label name '" + label + "'");
                }
                if (eq + 1 >= line.length() || line.charAt(eq + 1) != '"') {
                    throw new IllegalArgumentException(at + "label value not quoted");
                }
                StringBuilder v = new StringBuilder();
                int j = eq + 2;
                while (true) {
                    if (j >= line.length()) {
                        throw new IllegalArgumentException(at + "unterminated label value");
                    }
                    char c = line.charAt(j);
                    if (c == '"') {
                        break;
                    }
                    if (c == '\\') {
                        char n = j + 1 < line.length() ? line.charAt(j + 1) : 0;
                        switch (n) {
                            case '\\' -> v.append('\\');
                            case '"' -> v.append('"');
                            case 'n' -> v.append('\n');
                            default -> throw new IllegalArgumentException(at + "bad escape in label value");
                        }
                        j += 2;
                    } else {
                        v.append(c);
                        j++;
                    }
                }
                if (labels.put(label, v.toString()) != null) {
                    throw new IllegalArgumentException(at + "label '" + label + "' twice");
                }
                i = j + 1;
                if (i < line.length() && line.charAt(i) == ',') {
                    i++;
                } else if (i >= line.length() || line.charAt(i) != '}') {
                    throw new IllegalArgumentException(at + "expected ',' or '}' after a label");
                }
            }
        }
        if (i >= line.length() || line.charAt(i) != ' ') {
            throw new IllegalArgumentException(at + "no value");
        }
        String[] rest = line.substring(i + 1).split(" ", -1);
        if (rest.length < 1 || rest.length > 2) {
            throw new IllegalArgumentException(at + "expected a value and an optional timestamp");
        }
        double value = parseValue(rest[0], at + "value");
        if (rest.length == 2 && !rest[1].matches("-?[0-9]+")) {
            throw new IllegalArgumentException(at + "bad timestamp '" + rest[1] + "'");
        }
        return new Sample(name, labels, value);
    }

    private static double parseValue(String s, String what) {
        switch (s) {
            case "+Inf", "Inf" -> {
                return Double.POSITIVE_INFINITY;
            }
            case "-Inf" -> {
                return Double.NEGATIVE_INFINITY;
            }
            case "NaN" -> {
                return Double.NaN;
            }
            default -> {
                if (!s.matches("[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?")) {
                    throw new IllegalArgumentException(what + ": '" + s + "' is not a number");
                }
                return Double.parseDouble(s);
            }
        }
    }

    private static String unescapeHelp(String text, String at) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\\') {
                char n = i + 1 < text.length() ? text.charAt(i + 1) : 0;
                if (n == '\\') {
                    b.append('\\');
                } else if (n == 'n') {
                    b.append('\n');
                } else {
                    throw new IllegalArgumentException(at + "bad escape in HELP");
                }
                i++;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
