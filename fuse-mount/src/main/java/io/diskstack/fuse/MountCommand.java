package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.Stack;
import io.diskstack.core.config.StackConfig;
import io.diskstack.nbd.server.NbdFrontEnd;
import io.diskstack.nbd.server.NbdServer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "mount", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Mounts the exports of a config at MOUNTPOINT, one flat file per export, and serves them in the "
                    + "foreground until 'fusermount -u MOUNTPOINT', SIGINT or SIGTERM; then flushes, closes the "
                    + "images and exits 0.",
            "The config is a JSON file, or qemu-storage-daemon style --object/--blockdev/--export options. "
                    + "With neither, the built-in default example is mounted: a 1 GiB raw disk 'disk0' whose image "
                    + "lives in $DISKSTACK_STATE_DIR (default ~/.local/state/diskstack/default)."},
        footer = {"", "Example:",
            "  diskstack mount --blockdev driver=file,node-name=f0,filename=a.img \\",
            "      --blockdev driver=raw,node-name=r0,file=f0 --export id=disk0,node-name=r0,writable=on ./mnt"})
final class MountCommand implements Callable<Integer> {
    @Parameters(arity = "1..2", paramLabel = "[CONFIG] MOUNTPOINT",
            description = "An optional JSON config file, then the mount point (created if missing; must be empty).")
    List<Path> positional = new ArrayList<>();

    @Option(names = "--object", paramLabel = "TYPE,id=ID,...", description = "A QEMU object: secret, throttle-group.")
    List<String> objects = new ArrayList<>();

    @Option(names = "--blockdev", paramLabel = "driver=...,node-name=...", description = "A block node (QEMU -blockdev syntax, or JSON).")
    List<String> blockdevs = new ArrayList<>();

    @Option(names = "--export", paramLabel = "[type=fuse|nbd,]id=ID,node-name=NODE[,writable=on]",
            description = "A disk file in the mount (type=fuse, the default), or an NBD export (type=nbd, name=NAME).")
    List<String> exports = new ArrayList<>();

    @Option(names = "--nbd-server", paramLabel = "addr.type=inet,addr.host=H,addr.port=P",
            description = "Serve the nbd exports (addr.type=unix,addr.path=PATH; tls-creds=ID; max-connections=N).")
    String nbdServer;

    @Option(names = "--page-cache", description = "Let the kernel cache disk data (allows mmap; default is direct I/O).")
    boolean pageCache;

    @Option(names = {"-o", "--fuse-option"}, paramLabel = "OPT", description = "An extra FUSE mount option, such as allow_other.")
    List<String> fuseOptions = new ArrayList<>();

    @Option(names = "-v", description = "More messages (-vv for debugging).")
    boolean[] verbose = new boolean[0];

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Logging.configure(verbose.length);
        Path mountpoint = positional.get(positional.size() - 1);
        boolean hasArguments = !(objects.isEmpty() && blockdevs.isEmpty() && exports.isEmpty() && nbdServer == null);
        StackConfig config;
        if (positional.size() == 2) {
            if (hasArguments) {
                throw new ConfigException("give either a config file or --object/--blockdev/--export options, not both");
            }
            config = ConfigReader.readFile(positional.get(0));
        } else if (hasArguments) {
            config = ConfigReader.readArguments(objects, blockdevs, exports, nbdServer, Path.of("").toAbsolutePath());
            InlineSecretWarning.check(config.objects(), spec.commandLine().getErr());
        } else {
            config = ConfigReader.readFile(DefaultExample.prepare());
        }
        MountTree.checkExportIds(config);
        FuseMount.checkMountpoint(mountpoint);
        java.nio.channels.ServerSocketChannel nbdListener = NbdFrontEnd.listen(config);
        Stack stack;
        try {
            stack = Stack.open(config, DriverRegistry.load());
        } catch (Exception | Error e) {
            if (nbdListener != null) {
                nbdListener.close();
            }
            throw e;
        }
        NbdServer nbd = null;
        try {
            nbd = NbdFrontEnd.start(stack, nbdListener);
            return new FuseMount(stack, mountpoint, !pageCache, fuseOptions, nbd).run();
        } catch (Exception | Error e) {
            if (nbd != null) {
                nbd.close();
            } else if (nbdListener != null) {
                nbdListener.close();
            }
            stack.close();
            throw e;
        }
    }
}
