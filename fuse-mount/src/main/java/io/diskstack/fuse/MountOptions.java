package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The {@code -o} options of a mount, as {@code mount(8)} and {@code mount.fuse} pass them
 * ({@code rw,allow_other,nofail,dev,suid}): options that only mean something to {@code mount}
 * itself (fstab's {@code defaults}, {@code nofail}, {@code noauto}, {@code _netdev},
 * {@code x-systemd.*}…) are dropped; every other one goes to libfuse, which knows the FUSE and
 * kernel mount options ({@code allow_other}, {@code ro}, {@code nosuid}…) and refuses unknown ones.
 * {@code io_uring} and {@code io_uring_entries=N} are diskstack's own (FUSE over io_uring).
 */
final class MountOptions {
    /** Requests served at once per CPU over io_uring: each entry is a thread with a 1 MiB buffer. */
    static final int DEFAULT_URING_ENTRIES = 4;
    private static final int MAX_URING_ENTRIES = 64;
    /** mount(8)'s own options, which it may pass on to a helper but which are no business of the mount. */
    private static final Set<String> MOUNT_ONLY = Set.of("defaults", "auto", "noauto", "nofail", "user", "users",
            "nouser", "owner", "group", "_netdev", "loud", "silent");

    private final List<String> fuse = new ArrayList<>();
    private boolean uring;
    private int uringEntries = DEFAULT_URING_ENTRIES;

    MountOptions(List<String> lists) {
        for (String list : lists) {
            for (String option : list.split(",")) {
                String o = option.trim();
                if (o.isEmpty() || MOUNT_ONLY.contains(o) || o.startsWith("x-") || o.startsWith("comment=")) {
                    continue;
                }
                if (o.equals("io_uring")) {
                    uring = true;
                    continue;
                }
                if (o.startsWith("io_uring_entries=")) {
                    uring = true;
                    uringEntries = parseEntries(o);
                    continue;
                }
                if (o.startsWith("fsname=") || o.startsWith("subtype=")) {
                    throw new ConfigException("mount option '" + o + "' is diskstack's to set");
                }
                fuse.add(o);
            }
        }
    }

    private static int parseEntries(String option) {
        String value = option.substring(option.indexOf('=') + 1);
        try {
            int n = Integer.parseInt(value);
            if (n >= 1 && n <= MAX_URING_ENTRIES) {
                return n;
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new ConfigException("mount option '" + option + "': entries per CPU must be 1 to " + MAX_URING_ENTRIES);
    }

    /**
     * Entries per CPU queue for FUSE over io_uring ({@code io_uring}, or {@code io_uring_entries=N}
     * which implies it), or 0 to read requests from /dev/fuse only.
     */
    int uringEntries() {
        return uring ? uringEntries : 0;
    }

    /** What libfuse gets, in order. */
    List<String> fuseOptions() {
        return List.copyOf(fuse);
    }

    /** True if users other than the one mounting may open files in the mount. */
    boolean allowsOtherUsers() {
        return fuse.contains("allow_other");
    }
}
