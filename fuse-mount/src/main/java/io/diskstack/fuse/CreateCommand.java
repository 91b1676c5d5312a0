package io.diskstack.fuse;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.Sizes;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "create", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Creates an image file, like 'qemu-img create'. It never overwrites an existing file.",
        footer = {"", "Examples:", "  diskstack create -f raw disk.img 1G",
            "  diskstack create -f qcow2 -o cluster_size=64K,backing_file=base.qcow2,backing_fmt=qcow2 top.qcow2",
            "  diskstack create -p -f raw -o preallocation=full disk.img 20G",
            "  diskstack create -f dedup -o metadata=meta.img,data=data.img,block-size=4K 10G"})
final class CreateCommand implements Callable<Integer> {
    @Option(names = "-f", required = true, paramLabel = "FORMAT", description = "The image format: raw, qcow2, luks, ...")
    String format;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Format options, key=value,... (QEMU's names).")
    List<String> options = new ArrayList<>();

    @Option(names = "--object", paramLabel = "TYPE,id=ID,...", description = "A QEMU object, such as a secret for luks.")
    List<String> objects = new ArrayList<>();

    @Parameters(arity = "1..2", paramLabel = "FILE [SIZE]", description = {"The image file, then the virtual size: "
            + "1G, 512M, 10737418240 ...", "For a format that names its files in -o (dedup: metadata=, data=), "
            + "only the size."})
    List<String> positional = new ArrayList<>();

    @Option(names = "-p", description = "Show progress (preallocation); a bar on a terminal, else the final line.")
    boolean progress;

    @Option(names = "-v", description = "More messages.")
    boolean[] verbose = new boolean[0];

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Logging.configure(verbose.length);
        DriverRegistry drivers = DriverRegistry.load();
        BlockDriver driver = drivers.get(format, "create");
        Path file = null;
        String size = null;
        if (driver.namesFilesInOptions()) {
            if (positional.size() != 1) {
                throw new ConfigException("create -f " + format + ": give the files as -o options and only the size "
                        + "(diskstack create -f " + format + " -o metadata=FILE,data=FILE SIZE)");
            }
            size = positional.get(0);
        } else {
            file = Path.of(positional.get(0));
            size = positional.size() > 1 ? positional.get(1) : null;
        }
        String what = file == null ? "create -f " + format : "create '" + file + "'";
        long bytes = -1;
        if (size != null) {
            try {
                bytes = Sizes.parse(size);
            } catch (IllegalArgumentException e) {
                throw new ConfigException(what + ": size '" + size + "' is not a size (such as 1G or 512M)");
            }
        }
        Map<String, Object> flat = ImageCommandArgs.formatOptions("create", options);
        if (file != null && Files.exists(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new ConfigException("create: '" + file + "' already exists; remove it first (nothing was changed)");
        }
        Path base = Path.of("").toAbsolutePath();
        try (ObjectRegistry registry = ObjectRegistry.load()) {
            ImageCommandArgs.createObjects(registry, objects, base, spec.commandLine().getErr());
            NodeOptions opts = new NodeOptions(what + " (" + format + ")", flat);
            ProgressBar bar = progress ? ProgressBar.forStdout(spec.commandLine().getOut()) : null;
            try {
                driver.create(new ImageCreateContext(file == null ? null : file.toAbsolutePath(), bytes, opts, registry,
                        drivers, bar == null ? io.diskstack.core.Progress.NONE : bar.listener("create")));
                opts.assertAllConsumed();
                if (bar != null) {
                    bar.finish("create", Math.max(0, bytes));
                }
            } catch (Exception | Error e) {
                if (bar != null) {
                    bar.end(); // the error's line starts on a line of its own
                }
                // a driver that names its files in -o removes what it created itself
                if (file != null) {
                    Files.deleteIfExists(file);
                }
                throw e;
            }
        }
        return 0;
    }
}
