package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine;

/**
 * {@code diskstack job wait MNT ID} and {@code diskstack job list MNT}: the jobs of a mount, read
 * from its control files ({@code MNT/.control/jobs/ID/}), so they work from any shell.
 */
@Command(name = "job", mixinStandardHelpOptions = true,
        description = "Follow the block jobs of a mount (commit, stream, mirror, backup).",
        subcommands = {JobCommand.Wait.class, JobCommand.ListJobs.class})
final class JobCommand implements Runnable {
    @Override
    public void run() {
        throw new CommandLine.ParameterException(new CommandLine(this), "a job command is required (wait, list)");
    }

    /** A job's files, as the mount shows them. */
    record JobFiles(Path folder) {
        String read(String name) throws IOException {
            return Files.readString(folder.resolve(name)).strip();
        }

        String id() {
            return folder.getFileName().toString();
        }
    }

    static JobFiles job(Path mount, String id) {
        Path folder = mount.resolve(".control/jobs").resolve(id);
        if (!Files.isDirectory(folder)) {
            if (!Files.isDirectory(mount.resolve(".control"))) {
                throw new ConfigException("'" + mount + "' is not a diskstack mount");
            }
            throw new ConfigException("no job '" + id + "' in " + mount);
        }
        return new JobFiles(folder);
    }

    @Command(name = "wait", mixinStandardHelpOptions = true,
            description = "Wait until a job ends: exit 0 when it concluded, 1 when it aborted. Prints its final "
                    + "progress; with -p, a bar on a terminal while it runs.")
    static final class Wait implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "MNT", description = "The mount point.")
        Path mount;

        @Parameters(index = "1", paramLabel = "ID", description = "The job's id (commit-disk0, mirror-img1, ...).")
        String id;

        @CommandLine.Option(names = "-p", description = "Show progress: a bar on a terminal.")
        boolean progressBar;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            JobFiles job = job(mount, id);
            PrintWriter out = spec.commandLine().getOut();
            ProgressBar bar = new ProgressBar(out, progressBar && System.console() != null);
            while (true) {
                String status;
                String progress;
                try {
                    status = job.read("status");
                    progress = job.read("progress");
                } catch (NoSuchFileException e) {
                    throw new ConfigException("job '" + id + "' left " + mount + " (another job with its id?)");
                }
                bar.show(id + " " + status, progress);
                if (status.equals("concluded") || status.equals("aborted")) {
                    bar.end();
                    if (status.equals("aborted")) {
                        String error = job.read("error");
                        spec.commandLine().getErr().println("diskstack: job '" + id + "' aborted: " + error);
                        return Main.EXIT_RUNTIME;
                    }
                    return 0;
                }
                Thread.sleep(200);
            }
        }
    }

    @Command(name = "list", mixinStandardHelpOptions = true,
            description = "Every job of the mount: id, type, status, progress (done and total bytes, percent).")
    static final class ListJobs implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "MNT", description = "The mount point.")
        Path mount;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws Exception {
            Path jobs = mount.resolve(".control/jobs");
            if (!Files.isDirectory(mount.resolve(".control"))) {
                throw new ConfigException("'" + mount + "' is not a diskstack mount");
            }
            PrintWriter out = spec.commandLine().getOut();
            out.printf("%-24s %-7s %-10s %s%n", "ID", "TYPE", "STATUS", "PROGRESS");
            if (!Files.isDirectory(jobs)) {
                return 0;
            }
            List<Path> folders;
            try (Stream<Path> s = Files.list(jobs)) {
                folders = s.filter(Files::isDirectory).sorted().toList();
            }
            for (Path f : folders) {
                JobFiles j = new JobFiles(f);
                out.printf("%-24s %-7s %-10s %s%n", j.id(), j.read("type"), j.read("status"), j.read("progress"));
            }
            return 0;
        }
    }
}
