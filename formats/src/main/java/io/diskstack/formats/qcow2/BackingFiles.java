package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockChild;
import io.diskstack.core.ChildRole;
import io.diskstack.core.ConfigException;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Opens the backing file a header names: relative names resolve against the image's folder,
 * the format comes from the backing format extension or from the file's magic bytes, and the
 * chain is opened read-only. Chains that loop, missing files and names diskstack cannot open
 * (json: pseudo-protocol, nbd://…) fail with one line naming the image.
 */
final class BackingFiles {
    private static final Pattern PROTOCOL = Pattern.compile("^[A-Za-z][A-Za-z0-9+.\\-]*:");
    private static final List<String> KNOWN_PROTOCOLS = List.of("json", "nbd", "nbd+unix", "nbd+tcp", "http",
            "https", "ftp", "ftps", "ssh", "iscsi", "rbd", "gluster", "nfs", "vxhs", "null-co", "null-aio",
            "blkdebug", "blkverify", "host_device", "host_cdrom");
    private static final int MAX_DEPTH = 256;
    /** Images whose backing chain this thread is opening now, to find loops. */
    private static final ThreadLocal<Deque<Path>> OPENING = ThreadLocal.withInitial(ArrayDeque::new);

    private BackingFiles() {}

    static BlockChild open(NodeOpenContext ctx, Qcow2Header header, String imagePath) throws IOException {
        if (header.backingFile == null || header.backingFile.isEmpty()) {
            return null;
        }
        String name = header.backingFile;
        String where = ctx.owner() + ": '" + imagePath + "'";
        if (name.startsWith("file:")) {
            name = name.substring(5);
        } else if (PROTOCOL.matcher(name).find()) {
            String proto = name.substring(0, name.indexOf(':'));
            if (name.startsWith("json:") || KNOWN_PROTOCOLS.contains(proto) || name.contains("://")) {
                throw new ConfigException(where + " names backing file '" + abbreviate(name) + "' with a '"
                        + Qcow2Header.printable(proto) + ":' prefix, which diskstack cannot open; give the backing as a "
                        + "'backing' node instead");
            }
        }
        Path image = Path.of(imagePath).toAbsolutePath().normalize();
        boolean imageIsFile = Files.isRegularFile(image);
        Path dir = imageIsFile ? image.getParent() : ctx.resolvePath(".");
        Path target = dir == null ? Path.of(name) : dir.resolve(name).normalize();
        if (!Files.exists(target)) {
            throw new ConfigException(where + " needs backing file '" + Qcow2Header.printable(name) + "', but '"
                    + Qcow2Header.printable(target.toString()) + "' does not exist");
        }
        Deque<Path> chain = OPENING.get();
        int depthBefore = chain.size();
        try {
            if (chain.isEmpty() && imageIsFile) {
                chain.push(image.toRealPath());
            }
            Path targetReal = target.toRealPath();
            if (chain.contains(targetReal)) {
                List<String> names = new ArrayList<>();
                chain.descendingIterator().forEachRemaining(p -> names.add(p.getFileName().toString()));
                names.add(targetReal.getFileName().toString());
                throw new ConfigException(where + " has a backing chain that loops: " + String.join(" → ", names));
            }
            if (chain.size() >= MAX_DEPTH) {
                throw new ConfigException(where + " has a backing chain deeper than " + MAX_DEPTH + " images");
            }
            String format = header.backingFormat;
            if (format == null || format.isEmpty()) {
                format = probe(target);
            }
            if (!format.equals("qcow2") && !format.equals("raw")) {
                throw new ConfigException(where + " has backing file '" + Qcow2Header.printable(name) + "' in format '"
                        + Qcow2Header.printable(format) + "', which diskstack cannot open");
            }
            Map<String, Object> opts = new LinkedHashMap<>();
            opts.put("driver", format);
            opts.put("file.driver", "file");
            opts.put("file.filename", target.toString());
            chain.push(targetReal);
            return ctx.openImplicitChild("backing", opts, ChildRole.cow(), true);
        } finally {
            while (chain.size() > depthBefore) {
                chain.pop();
            }
        }
    }

    /** qcow2 if the file starts with the qcow2 magic, raw otherwise (QEMU's probing, minus formats we lack). */
    static String probe(Path file) throws IOException {
        byte[] magic = new byte[4];
        try (InputStream in = Files.newInputStream(file)) {
            if (in.readNBytes(magic, 0, 4) == 4 && (magic[0] & 0xff) == 'Q' && (magic[1] & 0xff) == 'F'
                    && (magic[2] & 0xff) == 'I' && (magic[3] & 0xff) == 0xfb) {
                return "qcow2";
            }
        }
        return "raw";
    }

    private static String abbreviate(String s) {
        return Qcow2Header.printable(s.length() <= 60 ? s : s.substring(0, 57) + "...");
    }
}
