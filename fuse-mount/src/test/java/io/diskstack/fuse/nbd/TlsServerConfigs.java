package io.diskstack.fuse.nbd;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The mount config the TLS tests share: a 16 MiB raw disk served as a file and as NBD export "vol". */
final class TlsServerConfigs {
    private TlsServerConfigs() {}

    /** Writes {@code dir/config.json} with the given {@code nbd-server} object and objects list. */
    static Path write(Path dir, String nbdServer, String objects) throws IOException {
        Path c = dir.resolve("config.json");
        Files.writeString(c, """
                {"create": [{"filename": "a.img", "format": "raw", "size": "16M"}],
                 "objects": [%s],
                 "nbd-server": %s,
                 "blockdev": [{"driver": "raw", "node-name": "r0", "file": {"driver": "file", "filename": "a.img"}}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true},
                             {"type": "nbd", "id": "e0", "node-name": "r0", "name": "vol", "writable": true}]}
                """.formatted(objects, nbdServer));
        return c;
    }
}
