package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;

/** User and group names to numbers, through the C library (so NSS: LDAP users resolve too). */
final class UnixUsers {
    /** struct passwd and struct group (LP64): two pointers, then pw_uid / gr_gid. */
    private static final int ID_OFFSET = 16;

    /** The C library's lookups. */
    public interface LibC {
        Pointer getpwnam(String name);

        Pointer getgrnam(String name);

        Pointer getpwuid(int uid);

        Pointer getgrgid(int gid);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");

    private UnixUsers() {}

    /** The uid of a user name or number. */
    static synchronized long uid(String nameOrNumber, String where) {
        if (nameOrNumber.matches("[0-9]+")) {
            return Long.parseLong(nameOrNumber);
        }
        Pointer p = LIBC.getpwnam(nameOrNumber);
        if (p == null) {
            throw new ConfigException(where + ": 'owner' user '" + nameOrNumber + "' does not exist");
        }
        return Integer.toUnsignedLong(p.getInt(ID_OFFSET));
    }

    /** The gid of a group name or number. */
    static synchronized long gid(String nameOrNumber, String where) {
        if (nameOrNumber.matches("[0-9]+")) {
            return Long.parseLong(nameOrNumber);
        }
        Pointer p = LIBC.getgrnam(nameOrNumber);
        if (p == null) {
            throw new ConfigException(where + ": 'group' group '" + nameOrNumber + "' does not exist");
        }
        return Integer.toUnsignedLong(p.getInt(ID_OFFSET));
    }

    /** A group's name, or its number if it has none. */
    static synchronized String groupName(long gid) {
        Pointer p = LIBC.getgrgid((int) gid);
        return p == null ? Long.toString(gid) : p.getPointer(0).getString(0);
    }

    /** A user's name, or its number if it has none. */
    static synchronized String name(long uid) {
        Pointer p = LIBC.getpwuid((int) uid);
        return p == null ? Long.toString(uid) : p.getPointer(0).getString(0);
    }
}
