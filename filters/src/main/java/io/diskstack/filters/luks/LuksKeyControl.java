package io.diskstack.filters.luks;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.ObjectRegistry;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.objects.Secret;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Key slot editing on an open volume, as control files under
 * {@code MNT/.control/nodes/NODE/}: {@code keyslots} lists the slots, {@code add-key} takes
 * {@code secret=ID} or {@code file=PATH} (plus optional {@code slot=N}, {@code iter-time=MS}),
 * {@code remove-key} takes {@code slot=N}, {@code secret=ID} or {@code file=PATH}.
 * Passphrases are read from secret objects or files, never written to the control file itself.
 */
final class LuksKeyControl {
    private final LuksNode node;
    private final ObjectRegistry objects;
    private final ImageRef ref;
    private LuksHeader header;

    LuksKeyControl(LuksNode node, LuksHeader header, ObjectRegistry objects, ImageRef ref) {
        this.node = node;
        this.header = header;
        this.objects = objects;
        this.ref = ref;
    }

    Map<String, ControlFile> files() {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        files.put("keyslots", ControlFile.readOnly(this::listing));
        files.put("add-key", command("secret=ID|file=PATH [slot=N] [iter-time=MS]\n", this::addKey));
        files.put("remove-key", command("slot=N|secret=ID|file=PATH\n", this::removeKey));
        return files;
    }

    private interface Action {
        void run(Map<String, String> args) throws IOException;
    }

    private ControlFile command(String usage, Action action) {
        return new ControlFile() {
            @Override
            public String read() {
                return usage;
            }

            @Override
            public boolean isWritable() {
                return true;
            }

            @Override
            public void write(String text) throws IOException {
                node.checkWritable();
                Map<String, String> args = parse(text);
                try {
                    action.run(args);
                } catch (ConfigException e) {
                    throw new BlockIOException(Errno.EINVAL, e.getMessage());
                }
            }
        };
    }

    private static Map<String, String> parse(String text) throws BlockIOException {
        Map<String, String> args = new LinkedHashMap<>();
        for (String word : text.trim().split("\\s+")) {
            int eq = word.indexOf('=');
            if (eq <= 0 || args.put(word.substring(0, eq), word.substring(eq + 1)) != null) {
                throw new BlockIOException(Errno.EINVAL, "expected KEY=VALUE words, got '" + word + "'");
            }
        }
        return args;
    }

    synchronized String listing() {
        return LuksKeySlots.describeSlots(header);
    }

    private synchronized void addKey(Map<String, String> args) throws IOException {
        byte[] pass = passphrase(args);
        int slot = intArg(args, "slot", -1);
        long iterTime = intArg(args, "iter-time", 2000);
        rejectUnknown(args);
        byte[] key = node.ciphers().keyCopy();
        try {
            LuksHash hash = header instanceof Luks1Header h1 ? h1.hash() : LuksHash.SHA256;
            KeySlots.add(header, node.headerDevice(), key, pass, slot, SlotSettings.pbkdf2(hash, iterTime), ref);
        } catch (IOException | RuntimeException e) {
            reload();
            throw e;
        } finally {
            LuksNode.wipe(key);
            LuksNode.wipe(pass);
        }
    }

    private synchronized void removeKey(Map<String, String> args) throws IOException {
        int slot;
        if (args.containsKey("slot")) {
            slot = intArg(args, "slot", -1);
            rejectUnknown(args);
        } else {
            byte[] pass = passphrase(args);
            rejectUnknown(args);
            try {
                slot = KeySlots.findSlot(header, node.headerDevice(), pass, ref);
            } finally {
                LuksNode.wipe(pass);
            }
            if (slot < 0) {
                throw new BlockIOException(Errno.EINVAL, "no key slot opens with that passphrase");
            }
        }
        try {
            KeySlots.kill(header, node.headerDevice(), slot, ref);
        } catch (IOException | RuntimeException e) {
            reload();
            throw e;
        }
    }

    /** After a failed edit, the header on disk is the truth. */
    private void reload() {
        try {
            header = LuksHeader.read(node.headerDevice(), ref);
        } catch (IOException | RuntimeException ignored) {
            // Keep the old view; the next edit will fail the same way and say why.
        }
    }

    private byte[] passphrase(Map<String, String> args) throws BlockIOException {
        String id = args.remove("secret");
        String file = args.remove("file");
        if ((id == null) == (file == null)) {
            throw new BlockIOException(Errno.EINVAL, "give secret=ID or file=PATH");
        }
        if (id != null) {
            try {
                return objects.get(id, Secret.class, "add-key", "secret").bytes();
            } catch (ConfigException e) {
                throw new BlockIOException(Errno.EINVAL, e.getMessage());
            }
        }
        Path p = Path.of(file);
        if (!p.isAbsolute()) {
            throw new BlockIOException(Errno.EINVAL, "file= needs an absolute path");
        }
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new BlockIOException(Errno.ENOENT, "cannot read key file '" + p + "': " + e.getClass().getSimpleName());
        }
    }

    private static int intArg(Map<String, String> args, String key, int dflt) throws BlockIOException {
        String v = args.remove(key);
        if (v == null) {
            return dflt;
        }
        if (!v.matches("[0-9]{1,9}")) {
            throw new BlockIOException(Errno.EINVAL, "'" + key + "' value '" + v + "' is not a number");
        }
        return Integer.parseInt(v);
    }

    private static void rejectUnknown(Map<String, String> args) throws BlockIOException {
        if (!args.isEmpty()) {
            throw new BlockIOException(Errno.EINVAL, "unknown argument '" + args.keySet().iterator().next() + "'");
        }
    }
}
