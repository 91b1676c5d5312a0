package io.diskstack.filters.luks;

import io.diskstack.core.ConfigException;

/**
 * Who is asking about which image, for one-line errors:
 * {@code blockdev 'l0' (luks): 'disk.img': LUKS1 'payload-offset' 9000 sectors is past the end}.
 */
record ImageRef(String owner, String file) {
    ConfigException error(String field, String problem) {
        return new ConfigException(prefix() + field + " " + problem);
    }

    ConfigException error(String problem) {
        return new ConfigException(prefix() + problem);
    }

    private String prefix() {
        return (owner == null ? "" : owner + ": ") + (file == null ? "" : "'" + file + "': ");
    }
}
