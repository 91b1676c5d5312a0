package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import io.diskstack.core.ObjectRegistry;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.objects.Secret;
import io.diskstack.filters.luks.LuksKeySlots;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

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

        ObjectRegistry load() {
            Path base = Path.of("").toAbsolutePath();
            ObjectRegistry registry = ObjectRegistry.load();
            try {
                for (var o : ConfigReader.readArguments(objects, List.of(), List.of(), base).objects()) {
                    registry.create(o, base);
                }
            } catch (RuntimeException e) {
                registry.close();
                throw e;
            }
            return registry;
        }
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
        int slot = -1;

        @Option(names = "--iter-time", paramLabel = "MS", description = "PBKDF2 time for the new slot (default 2000).")
        long iterTime = 2000;

        @Parameters(index = "0", paramLabel = "IMAGE")
        Path image;

        @Override
        public Integer call() throws Exception {
            checkImage(image);
            try (ObjectRegistry registry = secrets.load()) {
                Secret existing = registry.get(keySecret, Secret.class, "luks add-key", "--key-secret");
                Secret added = registry.get(newKeySecret, Secret.class, "luks add-key", "--new-key-secret");
                int used = LuksKeySlots.addKey(image, existing, added, slot, iterTime);
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
        Integer slot;

        @Parameters(index = "0", paramLabel = "IMAGE")
        Path image;

        @Override
        public Integer call() throws Exception {
            checkImage(image);
            if ((keySecret == null) == (slot == null)) {
                throw new ConfigException("luks remove-key: give --key-secret or --slot, not both");
            }
            if (slot != null) {
                LuksKeySlots.killSlot(image, slot);
                spec.commandLine().getOut().println("removed key slot " + slot);
                return 0;
            }
            try (ObjectRegistry registry = secrets.load()) {
                Secret s = registry.get(keySecret, Secret.class, "luks remove-key", "--key-secret");
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
