package io.diskstack.filters.luks;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.objects.Secret;
import io.diskstack.core.objects.SecretFiles;
import java.io.IOException;
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
    /**
     * One lock per node holding a header, shared by every luks node over it: held while reading
     * the header and while writing an edit, never during key derivation. (Other processes are
     * kept out by the image lock of the file below.)
     */
    private static final Map<BlockNode, Object> EDIT_LOCKS = java.util.Collections.synchronizedMap(
            new java.util.WeakHashMap<>());

    private final Object editLock;
    /** What {@code keyslots} shows (reads of control files never wait for I/O): the last header read. */
    private volatile LuksHeader shown;

    LuksKeyControl(LuksNode node, BlockNode headerNode, LuksHeader header, ObjectRegistry objects, ImageRef ref) {
        this.node = node;
        this.editLock = EDIT_LOCKS.computeIfAbsent(headerNode, n -> new Object());
        this.shown = header;
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
        return ControlFile.command(() -> usage, text -> {
            node.checkWritable();
            Map<String, String> args = parse(text);
            try {
                action.run(args);
            } catch (ConfigException e) {
                throw new BlockIOException(Errno.EINVAL, e.getMessage());
            }
        });
    }

    private static Map<String, String> parse(String text) throws BlockIOException {
        Map<String, String> args = new LinkedHashMap<>();
        for (String word : text.trim().split("\\s+")) {
            int eq = word.indexOf('=');
            // Never echo what was written: a mistyped line may be the passphrase itself.
            if (eq <= 0) {
                throw new BlockIOException(Errno.EINVAL, "expected KEY=VALUE words (secret=ID or file=PATH: "
                        + "never the passphrase itself); word " + (args.size() + 1) + " is not one");
            }
            if (args.put(word.substring(0, eq), word.substring(eq + 1)) != null) {
                throw new BlockIOException(Errno.EINVAL, "'" + word.substring(0, eq) + "' is given twice");
            }
        }
        return args;
    }

    /**
     * The header as it is on disk now. Every edit re-reads it while holding {@link #editLock},
     * so an edit never acts on a stale view (another node over the same image, an earlier
     * failed write).
     */
    private LuksHeader readHeader() throws IOException {
        LuksHeader h = LuksHeader.read(node.headerDevice(), ref);
        shown = h;
        return h;
    }

    String listing() {
        return LuksKeySlots.describeSlots(shown);
    }

    private void addKey(Map<String, String> args) throws IOException {
        int slot = intArg(args, "slot", -1);
        long iterTime = intArg(args, "iter-time", 2000);
        byte[] pass = passphrase(args);
        byte[] key = null;
        try {
            rejectUnknown(args);
            LuksHeader before;
            synchronized (editLock) {
                before = readHeader();
            }
            LuksHash hash = before instanceof Luks1Header h1 ? h1.hash() : LuksHash.SHA256;
            key = node.ciphers().keyCopy();
            // The key derivation takes iter-time: outside the lock, so other edits are not held up.
            try (KeySlots.NewSlot prepared = KeySlots.prepare(before, pass, SlotSettings.pbkdf2(hash, iterTime), ref)) {
                synchronized (editLock) {
                    LuksHeader h = readHeader();
                    try {
                        KeySlots.commit(h, node.headerDevice(), key, prepared, slot, ref);
                    } finally {
                        refresh();
                    }
                }
            }
        } finally {
            LuksNode.wipe(key);
            LuksNode.wipe(pass);
        }
    }

    private void removeKey(Map<String, String> args) throws IOException {
        if (args.containsKey("slot")) {
            int slot = intArg(args, "slot", -1);
            rejectUnknown(args);
            synchronized (editLock) {
                try {
                    KeySlots.kill(readHeader(), node.headerDevice(), slot, ref);
                } finally {
                    refresh();
                }
            }
            return;
        }
        byte[] pass = passphrase(args);
        KeySlot found;
        try {
            rejectUnknown(args);
            LuksHeader before;
            synchronized (editLock) {
                before = readHeader();
            }
            // Trying the slots runs their key derivations: outside the lock.
            found = KeySlots.findSlot(before, node.headerDevice(), pass, ref);
        } finally {
            LuksNode.wipe(pass);
        }
        if (found == null) {
            throw new BlockIOException(Errno.EINVAL, "no key slot opens with that passphrase");
        }
        synchronized (editLock) {
            LuksHeader h = readHeader();
            boolean unchanged = h.activeSlots().stream().anyMatch(s -> KeySlots.sameSlot(found, s));
            if (!unchanged) {
                throw new BlockIOException(Errno.EAGAIN, "key slot " + found.id()
                        + " changed while its passphrase was being checked; nothing was removed");
            }
            try {
                KeySlots.kill(h, node.headerDevice(), found.id(), ref);
            } finally {
                refresh();
            }
        }
    }

    /** After an edit (done or failed), shows what is on disk. */
    private void refresh() {
        try {
            readHeader();
        } catch (IOException | RuntimeException ignored) {
            // Keep showing the last view; the next edit reads the header again and says what is wrong.
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
                // Not e's message: it quotes the id, which may be a passphrase typed by mistake.
                throw new BlockIOException(Errno.EINVAL, "secret= names no secret object (it takes the id of a "
                        + "secret object, not a passphrase; or give file=PATH)");
            }
        }
        Path p = Path.of(file);
        if (!p.isAbsolute()) {
            throw new BlockIOException(Errno.EINVAL, "file= needs an absolute path");
        }
        return readKeyFile(p);
    }

    /** A key file's bytes, read before any lock is taken. */
    static byte[] readKeyFile(Path p) throws BlockIOException {
        try {
            return SecretFiles.read(p);
        } catch (IOException e) {
            throw new BlockIOException(Errno.EINVAL, "key file '" + p + "' " + e.getMessage());
        }
    }

    private static int intArg(Map<String, String> args, String key, int dflt) throws BlockIOException {
        String v = args.remove(key);
        if (v == null) {
            return dflt;
        }
        if (!v.matches("[0-9]{1,9}")) {
            throw new BlockIOException(Errno.EINVAL, "'" + key + "' is not a number");
        }
        return Integer.parseInt(v);
    }

    private static void rejectUnknown(Map<String, String> args) throws BlockIOException {
        if (!args.isEmpty()) {
            throw new BlockIOException(Errno.EINVAL, args.size() + " unknown argument(s) (known: secret, file, slot, "
                    + "iter-time; not shown, in case a passphrase was typed)");
        }
    }
}
