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
 */
final class MountOptions {
    /** mount(8)'s own options, which it may pass on to a helper but which are no business of the mount. */
    private static final Set<String> MOUNT_ONLY = Set.of("defaults", "auto", "noauto", "nofail", "user", "users",
            "nouser", "owner", "group", "_netdev", "loud", "silent");

    private final List<String> fuse = new ArrayList<>();

    MountOptions(List<String> lists) {
        for (String list : lists) {
            for (String option : list.split(",")) {
                String o = option.trim();
                if (o.isEmpty() || MOUNT_ONLY.contains(o) || o.startsWith("x-") || o.startsWith("comment=")) {
                    continue;
                }
                if (o.startsWith("fsname=") || o.startsWith("subtype=")) {
                    throw new ConfigException("mount option '" + o + "' is diskstack's to set");
                }
                fuse.add(o);
            }
        }
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
