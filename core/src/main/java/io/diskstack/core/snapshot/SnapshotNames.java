package io.diskstack.core.snapshot;

/**
 * The one rule for names a user gives snapshots, internal and external: 1 to 64 letters, digits,
 * '-', '.' and '_', not starting with '.' or '-'. Such a name is a file name in
 * {@code MNT/.snapshots/DISK/}, part of a node-name and of an overlay's file name, and one line
 * of a message. Snapshots other tools made (qemu-img snapshot -c "my snap") are still listed and
 * used by their id or name; only new names must follow the rule.
 */
public final class SnapshotNames {
    private static final int MAX = 64;

    private SnapshotNames() {}

    /** Why the name breaks the rule, or null if it follows it. */
    public static String problem(String name) {
        if (name == null || name.isEmpty()) {
            return "a snapshot needs a name";
        }
        String quoted = "snapshot name '" + printable(name) + "' ";
        if (name.indexOf('/') >= 0) {
            return quoted + "must not contain '/'";
        }
        if (name.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            return quoted + "must not contain control characters";
        }
        if (name.equals(".") || name.equals("..")) {
            return quoted + "is not a usable file name";
        }
        if (name.length() > MAX) {
            return quoted + "is longer than " + MAX + " characters";
        }
        if (!name.matches("[A-Za-z0-9_][A-Za-z0-9_.\\-]*")) {
            return quoted + "may use only letters, digits, '-', '.' and '_', and must not start with '.' or '-'";
        }
        return null;
    }

    /** The name with control and non-ASCII characters escaped, cut to 64, for one-line messages. */
    public static String printable(String name) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < name.length() && out.length() < MAX; i++) {
            char c = name.charAt(i);
            out.append(c < 0x20 || c >= 0x7f ? String.format("\\x%02x", (int) c & 0xff) : String.valueOf(c));
        }
        return name.length() > MAX ? out + "…" : out.toString();
    }
}
