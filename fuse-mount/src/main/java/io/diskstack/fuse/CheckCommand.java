package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import io.diskstack.formats.qcow2.Qcow2Check;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(name = "check", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Checks a qcow2 image, like 'qemu-img check': every reference against the stored refcounts. "
                + "With -r leaks, leaked clusters (left by a crash: harmless, but wasted space) are freed.",
            "Exit codes as qemu-img check: 0 clean (or all leaks repaired), 2 corruption found (or bad usage), "
                    + "3 leaks left, 1 the check itself failed."},
        footer = {"", "Example:", "  diskstack check -r leaks disk.qcow2"})
final class CheckCommand implements Callable<Integer> {
    static final int EXIT_CORRUPT = 2;
    static final int EXIT_LEAKS = 3;

    @Option(names = "-r", paramLabel = "leaks", description = "Repair: only 'leaks' is supported.")
    String repair;

    @Parameters(index = "0", paramLabel = "FILE", description = "The qcow2 image (not in use by a mount).")
    Path file;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Logging.configure(0);
        if (repair != null && !repair.equals("leaks")) {
            throw new ConfigException("check: -r '" + repair + "' is not supported (only -r leaks)");
        }
        if (!Files.exists(file)) {
            throw new ConfigException("check: '" + file + "' does not exist");
        }
        Qcow2Check.Report r = Qcow2Check.check(file, repair != null);
        PrintWriter out = spec.commandLine().getOut();
        for (String p : r.problems()) {
            out.println(p);
        }
        if (r.problems().size() < r.corruptions() + r.leaks()) {
            out.println("(" + (r.corruptions() + r.leaks() - r.problems().size()) + " more)");
        }
        if (r.leaksFixed() > 0) {
            out.println("Repaired " + r.leaksFixed() + " leaked cluster" + (r.leaksFixed() == 1 ? "" : "s") + ".");
        }
        long leaksLeft = r.leaks() - r.leaksFixed();
        if (r.corruptions() == 0 && leaksLeft == 0) {
            out.println("No errors were found on the image.");
        }
        if (r.corruptions() > 0) {
            out.println(r.corruptions() + " errors were found on the image.");
            out.println("Data may be corrupted, or further writes to the image may corrupt it.");
        }
        if (leaksLeft > 0) {
            out.println(leaksLeft + " leaked clusters were found on the image.");
            out.println("This means waste of disk space, but no harm to data.");
        }
        out.println(r.allocatedClusters() + " host clusters in use; the virtual disk has " + r.guestClusters()
                + " clusters.");
        out.flush();
        if (r.corruptions() > 0) {
            return EXIT_CORRUPT;
        }
        return leaksLeft > 0 ? EXIT_LEAKS : 0;
    }
}
