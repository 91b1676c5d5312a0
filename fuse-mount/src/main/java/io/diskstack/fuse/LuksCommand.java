package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.objects.Secret;
import io.diskstack.filters.luks.LuksKeySlots;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

/**
 * {@code diskstack luks add-key|remove-key|keyslots IMAGE}: cryptsetup's luksAddKey,
 * luksRemoveKey/luksKillSlot and a slot listing, on a LUKS image that is not mounted.
 * Passphrases come from {@code --object secret,…} (a file, never the command line).
 */
@Command(name = "luks", mixinStandardHelpOptions = true,
        description = "Key slots of a LUKS image that is not in use (to edit a mounted one, write to "
                + "MNT/.control/nodes/NODE/add-key or remove-key).",
        subcommands = {LuksCommand.AddKey.class, LuksCommand.RemoveKey.class, LuksCommand.ListSlots.class})
final class LuksCommand implements Runnable {
    @Override
    public void run() {
        throw new CommandLine.ParameterException(new CommandLine(this), "a luks command is required "
                + "(add-key, remove-key, keyslots)");
    }

    /** Secrets from --object, looked up by id. */
    static final class Secrets {
        @Option(names = "--object", paramLabel = "secret,id=ID,file=FILE",
                description = "A secret holding a passphrase (file=, or data= for tests).")
        List<String> objects = new ArrayList<>();

        ObjectRegistry load(java.io.PrintWriter err) {
            Path base = Path.of("").toAbsolutePath();
            ObjectRegistry registry = ObjectRegistry.load();
            try {
                ImageCommandArgs.createObjects(registry, objects, base, err);
            } catch (RuntimeException e) {
                registry.close();
                throw e;
            }
            return registry;
        }
    }

    /**
     * A secret by id, or an error that does not quote the id: a passphrase typed where the id
     * belongs must not be echoed.
     */
    static Secret secret(ObjectRegistry registry, String id, String command, String option) {
        try {
            return registry.get(id, Secret.class, command, option);
        } catch (ConfigException e) {
            throw new ConfigException(command + ": '" + option + "' names no secret object (it takes the id of an "
                    + "--object secret,id=ID,file=FILE, not a passphrase)");
        }
    }

    /** Fails on stray arguments without quoting them (one may be a passphrase). */
    static void noStrayArguments(List<String> unmatched, String command) {
        if (!unmatched.isEmpty()) {
            throw new ConfigException(command + ": " + unmatched.size() + " unexpected argument(s), not shown in case "
                    + "one is a passphrase (passphrases go in files: --object secret,id=ID,file=FILE)");
        }
    }

    /** A number option parsed without quoting the value on error. */
    static int number(String value, String command, String option, int dflt) {
        if (value == null) {
            return dflt;
        }
        if (!value.matches("[0-9]{1,9}")) {
            throw new ConfigException(command + ": '" + option + "' is not a number");
        }
        return Integer.parseInt(value);
    }

    static void checkImage(Path image) {
        if (!Files.isRegularFile(image)) {
            throw new ConfigException("luks: '" + image + "' is not a file");
        }
    }

    @Command(name = "add-key", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Adds a passphrase in a free key slot, like cryptsetup luksAddKey.",
            footer = {"", "Example:", "  diskstack luks add-key --object secret,id=old,file=old.key "
                    + "--object secret,id=new,file=new.key --key-secret old --new-key-secret new disk.luks"})
    static final class AddKey implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @CommandLine.Mixin
        Secrets secrets = new Secrets();

        @Option(names = "--key-secret", required = true, paramLabel = "ID", description = "A secret that opens the image.")
        String keySecret;

        @Option(names = "--new-key-secret", required = true, paramLabel = "ID", description = "The passphrase to add.")
        String newKeySecret;

        @Option(names = "--slot", paramLabel = "N", description = "The key slot (default: the first free one).")
        String slot;

        @Option(names = "--iter-time", paramLabel = "MS", description = "PBKDF2 time for the new slot (default 2000).")
        String iterTime;

        @Parameters(index = "0", paramLabel = "IMAGE")
        Path image;

        @CommandLine.Unmatched
        List<String> unmatched = new ArrayList<>();

        @Override
        public Integer call() throws Exception {
            String cmd = "luks add-key";
            noStrayArguments(unmatched, cmd);
            int slotNumber = number(slot, cmd, "--slot", -1);
            int iterMs = number(iterTime, cmd, "--iter-time", 2000);
            checkImage(image);
            try (ObjectRegistry registry = secrets.load(spec.commandLine().getErr())) {
                Secret existing = secret(registry, keySecret, cmd, "--key-secret");
                Secret added = secret(registry, newKeySecret, cmd, "--new-key-secret");
                int used = LuksKeySlots.addKey(image, existing, added, slotNumber, iterMs);
                spec.commandLine().getOut().println("added key slot " + used);
            }
            return 0;
        }
    }

    @Command(name = "remove-key", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Removes a key slot, by the passphrase it holds (cryptsetup luksRemoveKey) or by number "
                    + "(luksKillSlot). The last key slot is never removed.")
    static final class RemoveKey implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @CommandLine.Mixin
        Secrets secrets = new Secrets();

        @Option(names = "--key-secret", paramLabel = "ID", description = "Remove the slot this secret opens.")
        String keySecret;

        @Option(names = "--slot", paramLabel = "N", description = "Remove this slot.")
        String slot;

        @Parameters(index = "0", paramLabel = "IMAGE")
        Path image;

        @CommandLine.Unmatched
        List<String> unmatched = new ArrayList<>();

        @Override
        public Integer call() throws Exception {
            String cmd = "luks remove-key";
            noStrayArguments(unmatched, cmd);
            checkImage(image);
            if ((keySecret == null) == (slot == null)) {
                throw new ConfigException("luks remove-key: give --key-secret or --slot, not both");
            }
            if (slot != null) {
                int n = number(slot, cmd, "--slot", -1);
                LuksKeySlots.killSlot(image, n);
                spec.commandLine().getOut().println("removed key slot " + n);
                return 0;
            }
            try (ObjectRegistry registry = secrets.load(spec.commandLine().getErr())) {
                Secret s = secret(registry, keySecret, cmd, "--key-secret");
                spec.commandLine().getOut().println("removed key slot " + LuksKeySlots.removeKey(image, s));
            }
            return 0;
        }
    }

    @Command(name = "keyslots", mixinStandardHelpOptions = true,
            description = "Lists the active key slots: number, KDF and its costs (no salts or keys).")
    static final class ListSlots implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(index = "0", paramLabel = "IMAGE")
        Path image;

        @Override
        public Integer call() throws Exception {
            checkImage(image);
            spec.commandLine().getOut().print(LuksKeySlots.listSlots(image));
            spec.commandLine().getOut().flush();
            return 0;
        }
    }
}
