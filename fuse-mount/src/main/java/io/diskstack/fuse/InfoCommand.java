package io.diskstack.fuse;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.info.ImageInfo;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.KeyVal;
import io.diskstack.core.options.OptionTree;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "info", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Shows an image's format, virtual size, disk size and its format's own fields, like "
                + "'qemu-img info' (same fields, same JSON keys). The format is probed unless -f names it.",
            "A LUKS volume is described from its header: no key is needed. To look inside an encrypted "
                    + "container (a qcow2 image in a LUKS volume, as 'backup encrypt=' makes), give the key with "
                    + "--object secret,... and the whole stack with --image-opts."},
        footer = {"", "Examples:", "  diskstack info disk.qcow2",
            "  diskstack info --backing-chain --output=json top.qcow2",
            "  diskstack info --object secret,id=s0,file=key.txt --image-opts \\",
            "      driver=qcow2,file.driver=luks,file.key-secret=s0,file.file.driver=file,file.file.filename=b.qcow2"})
final class InfoCommand implements Callable<Integer> {
    @Option(names = "-f", paramLabel = "FORMAT", description = "The image format (default: probed).")
    String format;

    @Option(names = "--backing-chain", description = "Also every image down the backing chain.")
    boolean backingChain;

    @Option(names = "--output", paramLabel = "human|json", defaultValue = "human", description = "The output format.")
    String output;

    @Option(names = "--object", paramLabel = "TYPE,id=ID,...", description = "A QEMU object, such as a secret.")
    List<String> objects = new ArrayList<>();

    @Option(names = "--image-opts", description = "FILE is a node's options (driver=...,file.filename=...), not a file name.")
    boolean imageOpts;

    @Option(names = {"-U", "--force-share"}, description = "Open the image even while a mount or QEMU writes it.")
    boolean forceShare;

    @Parameters(index = "0", paramLabel = "FILE")
    String file;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Logging.configure(0);
        if (!output.equals("human") && !output.equals("json")) {
            throw new ConfigException("info: --output '" + output + "' is not supported (human or json)");
        }
        Path base = Path.of("").toAbsolutePath();
        DriverRegistry drivers = DriverRegistry.load();
        try (ObjectRegistry registry = ObjectRegistry.load()) {
            ImageCommandArgs.createObjects(registry, objects, base, spec.commandLine().getErr());
            try (BlockGraph graph = BlockGraph.forInspection(drivers, registry, base, backingChain)) {
                BlockNode top = graph.open(imageOpts ? imageOptions() : fileOptions(drivers));
                String shown = imageOpts ? String.valueOf(top.filename()) : file;
                List<Map<String, Object>> images = ImageInfo.describe(top, shown, backingChain);
                PrintWriter out = spec.commandLine().getOut();
                out.print(output.equals("json") ? ImageInfo.json(images, backingChain) : ImageInfo.human(images));
                out.flush();
            }
        }
        return 0;
    }

    private Map<String, Object> imageOptions() {
        if (format != null) {
            throw new ConfigException("info: -f and --image-opts do not go together: give driver=... in the options");
        }
        Map<String, Object> flat;
        try {
            flat = new LinkedHashMap<>(KeyVal.parse(file, null));
        } catch (IllegalArgumentException e) {
            throw new ConfigException("info: --image-opts: " + e.getMessage());
        }
        flat.putIfAbsent("node-name", "image");
        flat.put("read-only", Boolean.TRUE);
        return flat;
    }

    private Map<String, Object> fileOptions(DriverRegistry drivers) throws IOException {
        Path path = Path.of(file).toAbsolutePath();
        if (!Files.exists(path)) {
            throw new ConfigException("info: '" + file + "' does not exist");
        }
        if (Files.isDirectory(path)) {
            throw new ConfigException("info: '" + file + "' is a folder, not an image");
        }
        String fmt = format;
        if (fmt == null) {
            byte[] head;
            try (InputStream in = Files.newInputStream(path)) {
                head = in.readNBytes(512);
            }
            BlockDriver probed = drivers.probe(head);
            if (probed == null) {
                throw new ConfigException("info: '" + file + "': no driver recognises its format; give it with -f");
            }
            fmt = probed.name();
        }
        Map<String, Object> protocol = null;
        for (String n : drivers.names()) {
            protocol = drivers.get(n, "info").hostFileOptions(path.toString());
            if (protocol != null) {
                break;
            }
        }
        if (protocol == null) {
            throw new IllegalStateException("no driver opens host files");
        }
        Map<String, Object> file = new LinkedHashMap<>(protocol);
        if (forceShare) {
            file.put("locking", "off");
        }
        Map<String, Object> top = new LinkedHashMap<>();
        top.put("driver", fmt);
        top.put("node-name", "image");
        top.put("read-only", Boolean.TRUE);
        top.put("file", file);
        return OptionTree.flatten(top);
    }
}
