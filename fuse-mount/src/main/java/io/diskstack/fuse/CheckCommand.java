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
                + "With -r leaks, leaked clusters (left by a crash: harmless, but wasted space) are freed "
                + "(and wrong COPIED flags fixed if nothing else is wrong); -r all also raises refcounts "
                + "that are too low and always fixes the COPIED flags.",
            "Exit codes as qemu-img check, for the image as it is after any repair: 0 clean, 2 corruption, "
                    + "3 leaks only, 1 the check could not complete (the image cannot be opened, its snapshot or "
                    + "refcount table cannot be read, or -r leaks met damage only -r all repairs); 2 also for "
                    + "bad usage."},
        footer = {"", "Example:", "  diskstack check -r leaks disk.qcow2"})
final class CheckCommand implements Callable<Integer> {
    static final int EXIT_INCOMPLETE = 1;
    static final int EXIT_CORRUPT = 2;
    static final int EXIT_LEAKS = 3;

    @Option(names = "-r", paramLabel = "leaks|all", description = "Repair leaks, or all that can be repaired.")
    String repair;

    @Option(names = "-p", description = "Show progress; a bar on a terminal, else the final line.")
    boolean progress;

    @Parameters(index = "0", paramLabel = "FILE", description = "The qcow2 image (not in use by a mount).")
    Path file;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Logging.configure(0);
        Qcow2Check.Repair mode;
        if (repair == null) {
            mode = Qcow2Check.Repair.NONE;
        } else if (repair.equals("leaks")) {
            mode = Qcow2Check.Repair.LEAKS;
        } else if (repair.equals("all")) {
            mode = Qcow2Check.Repair.ALL;
        } else {
            throw new ConfigException("check: -r '" + repair + "' is not supported (leaks or all)");
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (!Files.exists(file)) {
            err.println("diskstack: check: '" + file + "' does not exist");
            return EXIT_INCOMPLETE;
        }
        Qcow2Check.Report r;
        ProgressBar bar = progress ? ProgressBar.stepsForStdout(out) : null;
        try {
            r = Qcow2Check.check(file, mode, bar == null ? io.diskstack.core.Progress.NONE : bar.listener("check"));
            if (bar != null) {
                bar.finish("check", 0);
            }
        } catch (ConfigException e) {
            // as qemu-img check: an image that cannot be opened is a check that could not complete
            err.println("diskstack: check: " + e.getMessage());
            return EXIT_INCOMPLETE;
        }
        for (String p : r.problems()) {
            out.println(p);
        }
        long listed = r.corruptions() + r.leaks() + r.checkErrors() + r.corruptionsFixed() + r.leaksFixed();
        if (r.problems().size() < listed) {
            out.println("(" + (listed - r.problems().size()) + " more)");
        }
        if (r.leaksFixed() + r.corruptionsFixed() > 0) {
            out.println("The following inconsistencies were found and repaired:");
            out.println("    " + r.leaksFixed() + " leaked clusters");
            out.println("    " + r.corruptionsFixed() + " corruptions");
            out.println("Double checking the fixed image now...");
        }
        if (r.isClean()) {
            out.println("No errors were found on the image.");
        }
        if (r.corruptions() > 0) {
            out.println(r.corruptions() + " errors were found on the image.");
            out.println("Data may be corrupted, or further writes to the image may corrupt it.");
        }
        if (r.leaks() > 0) {
            out.println(r.leaks() + " leaked clusters were found on the image.");
            out.println("This means waste of disk space, but no harm to data.");
        }
        if (r.checkErrors() > 0) {
            out.println(r.checkErrors() + " problems kept the check from completing.");
        }
        out.println(r.allocatedClusters() + " host clusters in use; the virtual disk has " + r.guestClusters()
                + " clusters.");
        out.flush();
        if (r.checkErrors() > 0) {
            err.println("diskstack: check: " + r.image() + ": the check could not complete");
            return EXIT_INCOMPLETE;
        }
        if (r.corruptions() > 0) {
            return EXIT_CORRUPT;
        }
        return r.leaks() > 0 ? EXIT_LEAKS : 0;
    }
}
