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
                    + "lives in $DISKSTACK_STATE_DIR (default ~/.local/state/diskstack/default).",
            "With --daemonize it returns once the disks answer (exit 0) and serves in the background, logging to "
                    + "syslog; an error before that is printed here, with its exit code. Under systemd "
                    + "(Type=notify) it sends READY=1 when the disks answer and STOPPING=1 on the way down.",
            "mount(8) runs 'diskstack CONFIG MOUNTPOINT -o OPTIONS' for 'mount -t fuse.diskstack' and fstab lines "
                    + "of type fuse.diskstack: that form is 'mount --daemonize'."},
        footer = {"", "Examples:",
            "  diskstack mount --blockdev driver=file,node-name=f0,filename=a.img \\",
            "      --blockdev driver=raw,node-name=r0,file=f0 --export id=disk0,node-name=r0,writable=on ./mnt",
            "  diskstack mount --daemonize --pidfile /run/vms.pid -o allow_other /etc/diskstack/vms.json /srv/vms",
            "  mount -t fuse.diskstack /etc/diskstack/vms.json /srv/vms -o allow_other"})
final class MountCommand implements Callable<Integer> {
    @Parameters(arity = "1..2", paramLabel = "[CONFIG] MOUNTPOINT",
            description = "An optional JSON config file, then the mount point (created if missing; must be empty).")
    List<Path> positional = new ArrayList<>();

    @Option(names = "--object", paramLabel = "TYPE,id=ID,...", description = "A QEMU object: secret, throttle-group.")
    List<String> objects = new ArrayList<>();

    @Option(names = "--blockdev", paramLabel = "driver=...,node-name=...", description = "A block node (QEMU -blockdev syntax, or JSON).")
    List<String> blockdevs = new ArrayList<>();

    @Option(names = "--export", paramLabel = "[type=fuse|nbd,]id=ID,node-name=NODE[,writable=on]",
            description = "A disk file in the mount (type=fuse, the default; owner=USER, group=GROUP and mode=0660 "
                    + "set who may open it, default: the mounting user, 0600), or an NBD export (type=nbd, name=NAME).")
    List<String> exports = new ArrayList<>();

    @Option(names = "--nbd-server", paramLabel = "addr.type=inet,addr.host=H,addr.port=P",
            description = "Serve the nbd exports (addr.type=unix,addr.path=PATH; tls-creds=ID; max-connections=N).")
    String nbdServer;

    @Option(names = "--page-cache", description = "Let the kernel cache disk data (allows mmap; default is direct I/O).")
    boolean pageCache;

    @Option(names = {"-o", "--fuse-option"}, paramLabel = "OPT[,OPT...]",
            description = "Mount options, such as allow_other (other users, such as libvirt's QEMU, may open the "
                    + "disks; their owner and mode then decide), ro, nosuid; fstab-only ones (defaults, nofail, "
                    + "_netdev, x-...) are ignored. io_uring: FUSE over io_uring where the kernel offers it "
                    + "(enable_uring set on the fuse module), io_uring_entries=N requests at once per CPU (default 4).")
    List<String> fuseOptions = new ArrayList<>();

    @Option(names = "--daemonize", description = "Return once the disks answer, and serve in the background.")
    boolean daemonize;

    @Option(names = "--pidfile", paramLabel = "FILE", description = "Write the process id to FILE once the disks "
            + "answer (atomically); removed on exit.")
    Path pidfile;

    /** The process --daemonize started: it serves, and tells its parent when the disks answer. */
    @Option(names = "--daemon-child", hidden = true)
    boolean daemonChild;

    @Option(names = "-v", description = "More messages (-vv for debugging).")
    boolean[] verbose = new boolean[0];

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Logging.configure(verbose.length);
        if (daemonize && !daemonChild) {
            return Daemonizer.run(childArguments(), spec.commandLine().getErr());
        }
        List<MountListener> listeners = new ArrayList<>();
        if (daemonChild) {
            listeners.add(new DaemonChild(verbose.length));
        }
        if (pidfile != null) {
            listeners.add(new PidFile(pidfile));
        }
        SystemdNotify notify = SystemdNotify.fromEnvironment();
        if (notify != null) {
            listeners.add(notify);
        }
        MountOptions mountOptions = new MountOptions(fuseOptions);
        Path mountpoint = positional.get(positional.size() - 1);
        boolean hasArguments = !(objects.isEmpty() && blockdevs.isEmpty() && exports.isEmpty() && nbdServer == null);
        StackConfig config;
        if (positional.size() == 2) {
            if (hasArguments) {
                throw new ConfigException("give either a config file or --object/--blockdev/--export/--nbd-server options, not both");
            }
            config = ConfigReader.readFile(positional.get(0));
        } else if (hasArguments) {
            config = ConfigReader.readArguments(objects, blockdevs, exports, nbdServer, Path.of("").toAbsolutePath());
            InlineSecretWarning.check(config.objects(), spec.commandLine().getErr());
        } else {
            config = ConfigReader.readFile(DefaultExample.prepare());
        }
        MountTree.checkExportIds(config);
        MountTree.access(config.exports(), 0, 0); // an unknown owner or group fails here, before anything is opened
        FuseMount.checkMountpoint(mountpoint);
        String source = config.source() != null ? config.source().toAbsolutePath().normalize().toString() : "diskstack";
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
            return new FuseMount(stack, mountpoint, !pageCache, mountOptions, source, listeners, nbd).run();
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

    /** This command's arguments for the daemon it starts. */
    private List<String> childArguments() {
        List<String> args = new ArrayList<>(List.of("mount", "--daemon-child"));
        for (String o : objects) {
            args.addAll(List.of("--object", o));
        }
        for (String b : blockdevs) {
            args.addAll(List.of("--blockdev", b));
        }
        for (String e : exports) {
            args.addAll(List.of("--export", e));
        }
        if (nbdServer != null) {
            args.addAll(List.of("--nbd-server", nbdServer));
        }
        if (pageCache) {
            args.add("--page-cache");
        }
        for (String o : fuseOptions) {
            args.addAll(List.of("-o", o));
        }
        if (pidfile != null) {
            args.addAll(List.of("--pidfile", pidfile.toAbsolutePath().toString()));
        }
        for (int i = 0; i < verbose.length; i++) {
            args.add("-v");
        }
        args.add("--");
        for (Path p : positional) {
            args.add(p.toAbsolutePath().toString());
        }
        return args;
    }
}
