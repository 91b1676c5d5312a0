package io.diskstack.fuse;

import io.diskstack.core.ConfigException;
import java.util.logging.Level;
import java.util.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine;

/**
 * The {@code diskstack} command. Exit codes: 0 success or clean unmount; 2 bad usage or bad
 * config (nothing changed); 1 a failure at run time. Messages go to stderr, one line each.
 */
@Command(name = "diskstack", mixinStandardHelpOptions = true, version = "diskstack 0.1.0",
        description = "Stacks of block nodes (file, raw, qcow2, luks, throttle, quorum, ...) served as flat disk "
                + "files in a FUSE mount.",
        subcommands = {MountCommand.class, CreateCommand.class, InfoCommand.class, LuksCommand.class, CheckCommand.class,
                JobCommand.class, ManPageCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    static final int EXIT_RUNTIME = 1;
    static final int EXIT_USAGE = 2;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        return run(new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true), args);
    }

    static int run(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
        Logging.configure(0);
        CommandLine cli = new CommandLine(new Main());
        args = asMountHelper(cli, args);
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof ConfigException) {
                cmd.getErr().println("diskstack: " + Logging.printable(e.getMessage()));
                return EXIT_USAGE;
            }
            Logger.getLogger("io.diskstack").log(Level.FINE, "failure", e);
            cmd.getErr().println("diskstack: error: " + Logging.printable(e.getMessage() == null ? e.toString()
                    : e.getMessage()));
            return EXIT_RUNTIME;
        });
        cli.setParameterExceptionHandler((e, a) -> {
            e.getCommandLine().getErr().println("diskstack: " + e.getMessage());
            e.getCommandLine().getErr().println("Try '" + e.getCommandLine().getCommandSpec().qualifiedName()
                    + " --help' for more information.");
            return EXIT_USAGE;
        });
        return cli.execute(args);
    }

    /**
     * mount.fuse runs {@code diskstack CONFIG MOUNTPOINT -o OPTIONS} for {@code mount -t
     * fuse.diskstack} and fstab lines: that is {@code mount --daemonize}, since mount(8) waits for
     * its helper to return once the file system is mounted.
     */
    static String[] asMountHelper(CommandLine cli, String[] args) {
        int positional = 0;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("-o")) {
                i++;
            } else if (args[i].startsWith("-")) {
                return args;
            } else {
                positional++;
            }
        }
        if (positional != 2 || cli.getSubcommands().containsKey(args[0])) {
            return args;
        }
        String[] out = new String[args.length + 2];
        out[0] = "mount";
        out[1] = "--daemonize";
        System.arraycopy(args, 0, out, 2, args.length);
        return out;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(new CommandLine(this), "a command is required (mount, create, info, luks, check, job)");
    }
}
