package io.diskstack.core.options;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * QEMU's {@code key=value,key2=value2} syntax for command-line objects, block devices and
 * exports: dotted keys nest, {@code ,,} is a literal comma, and the first element may omit its
 * key ({@code --object secret,id=s0} means {@code qom-type=secret}).
 */
public final class KeyVal {
    private KeyVal() {}

    /**
     * Parses one option string into a flat map of string values.
     *
     * @param impliedKey the key of a first element written without {@code =}, or null if none
     * @throws IllegalArgumentException with a message naming the bad element
     */
    public static Map<String, Object> parse(String text, String impliedKey) {
        Map<String, Object> out = new LinkedHashMap<>();
        int i = 0;
        int n = text.length();
        boolean first = true;
        while (i <= n) {
            StringBuilder key = new StringBuilder();
            while (i < n && text.charAt(i) != '=' && text.charAt(i) != ',') {
                key.append(text.charAt(i++));
            }
            String value;
            String k;
            if (i < n && text.charAt(i) == '=') {
                i++;
                StringBuilder v = new StringBuilder();
                while (i < n) {
                    char c = text.charAt(i);
                    if (c == ',') {
                        if (i + 1 < n && text.charAt(i + 1) == ',') {
                            v.append(',');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    v.append(c);
                    i++;
                }
                k = key.toString();
                value = v.toString();
            } else {
                if (!first || impliedKey == null) {
                    if (key.length() == 0 && i >= n && !first) {
                        break;
                    }
                    throw new IllegalArgumentException("expected key=value, found '" + key + "'");
                }
                k = impliedKey;
                value = key.toString();
            }
            if (k.isEmpty()) {
                throw new IllegalArgumentException("empty key before '=" + value + "'");
            }
            if (!k.matches("[A-Za-z0-9_.\\-]+") || k.startsWith(".") || k.endsWith(".") || k.contains("..")) {
                throw new IllegalArgumentException("bad key '" + k + "'");
            }
            if (out.containsKey(k)) {
                throw new IllegalArgumentException("'" + k + "' is set twice");
            }
            out.put(k, value);
            first = false;
            if (i >= n) {
                break;
            }
            i++; // the comma
            if (i >= n) {
                throw new IllegalArgumentException("trailing comma");
            }
        }
        return OptionTree.flatten(out);
    }
}
