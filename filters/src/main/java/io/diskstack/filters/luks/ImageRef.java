package io.diskstack.filters.luks;

import io.diskstack.core.ConfigException;

/**
 * Who is asking about which image, for one-line errors (one line whatever the header holds):
 * {@code blockdev 'l0' (luks): 'disk.img': LUKS1 'payload-offset' 9000 sectors is past the end}.
 */
record ImageRef(String owner, String file) {
    /** An error; what came from the header (field names, values) is escaped ({@link Bytes#printable}). */
    ConfigException error(String field, String problem) {
        return new ConfigException(prefix() + Bytes.printable(field + " " + problem));
    }

    ConfigException error(String problem) {
        return new ConfigException(prefix() + Bytes.printable(problem));
    }

    private String prefix() {
        return (owner == null ? "" : owner + ": ") + (file == null ? "" : "'" + file + "': ");
    }
}
