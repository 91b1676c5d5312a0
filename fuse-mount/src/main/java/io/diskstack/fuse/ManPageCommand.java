package io.diskstack.fuse;

import java.io.PrintWriter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine;

/**
 * {@code diskstack man-page}: the manual page, diskstack(1), in roff, drawn from the commands'
 * own descriptions and options (what {@code --help} shows), so it never disagrees with them.
 * {@code scripts/install} writes it to {@code share/man/man1/diskstack.1}.
 */
@Command(name = "man-page", hidden = true, description = "Prints the manual page (roff).")
final class ManPageCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        CommandSpec top = spec.parent();
        PrintWriter out = spec.commandLine().getOut();
        out.println(".TH DISKSTACK 1 \"\" \"" + roff(top.version()[0]) + "\" \"User Commands\"");
        out.println(".SH NAME");
        out.println("diskstack \\- " + roff(String.join(" ", top.usageMessage().description())));
        out.println(".SH SYNOPSIS");
        out.println(".B diskstack");
        out.println("\\fICOMMAND\\fR [\\fIOPTIONS\\fR]");
        out.println(".br");
        out.println(".B diskstack");
        out.println("\\fICONFIG MOUNTPOINT\\fR [\\fB\\-o\\fR \\fIOPTIONS\\fR]");
        out.println(".SH DESCRIPTION");
        out.println("A userspace block layer: a graph of block nodes (image formats such as qcow2 and raw, the file "
                + "protocol, and filters such as luks, throttle, quorum and copy\\-on\\-read) served as flat disk files "
                + "in a FUSE mount, with control files under \\fIMOUNTPOINT\\fR/.control. Option names and outputs "
                + "are QEMU's.");
        out.println(".PP");
        out.println("The second form is what \\fBmount.fuse\\fR(8) runs for \\fBmount \\-t fuse.diskstack\\fR and "
                + "for \\fBfstab\\fR(5) lines of type fuse.diskstack: it is \\fBdiskstack mount \\-\\-daemonize\\fR.");
        out.println(".SH COMMANDS");
        for (Map.Entry<String, CommandLine> e : top.subcommands().entrySet()) {
            CommandSpec c = e.getValue().getCommandSpec();
            if (c.usageMessage().hidden() || e.getKey().equals("help")) {
                continue;
            }
            command(out, "diskstack " + e.getKey(), c);
            for (Map.Entry<String, CommandLine> sub : c.subcommands().entrySet()) {
                CommandSpec s = sub.getValue().getCommandSpec();
                if (!s.usageMessage().hidden() && !sub.getKey().equals("help")) {
                    command(out, "diskstack " + e.getKey() + " " + sub.getKey(), s);
                }
            }
        }
        out.println(".SH \"EXIT STATUS\"");
        out.println("0 success, or a clean unmount; 2 bad usage or a bad config (nothing was changed); 1 a failure at "
                + "run time. \\fBcheck\\fR exits as \\fBqemu\\-img check\\fR: 0 clean, 2 corrupt, 3 leaks only, 1 the "
                + "check could not complete.");
        out.println(".SH FILES");
        out.println(".TP");
        out.println("\\fIMOUNTPOINT\\fR/.control/graph, graph.json, graph.dot, metrics");
        out.println("The node graph as a tree, as QEMU's x\\-debug\\-query\\-block\\-graph, for Graphviz; the stats of "
                + "every export and node in Prometheus's text format.");
        out.println(".TP");
        out.println("/etc/diskstack/\\fINAME\\fR.json");
        out.println("The config that the systemd unit diskstack@\\fINAME\\fR.service mounts.");
        out.println(".SH \"SEE ALSO\"");
        out.println("\\fBqemu\\-img\\fR(1), \\fBqemu\\-storage\\-daemon\\fR(1), \\fBmount.fuse\\fR(8), \\fBfstab\\fR(5), "
                + "\\fBsystemd.service\\fR(5), \\fBdot\\fR(1)");
        out.flush();
        return 0;
    }

    private static void command(PrintWriter out, String name, CommandSpec c) {
        out.println(".SS \"" + roff(name) + "\"");
        String synopsis = new CommandLine.Help(c, new CommandLine.Help.ColorScheme.Builder(CommandLine.Help.Ansi.OFF)
                .build()).synopsis(0).strip().replaceFirst("^Usage: ", "");
        out.println(".B " + roff(synopsis.replaceAll("\\s+", " ")));
        out.println(".PP");
        for (String paragraph : c.usageMessage().description()) {
            out.println(roff(paragraph));
            out.println(".PP");
        }
        for (PositionalParamSpec p : c.positionalParameters()) {
            if (!p.hidden() && p.description().length > 0) {
                out.println(".TP");
                out.println("\\fI" + roff(p.paramLabel()) + "\\fR");
                out.println(roff(String.join(" ", p.description())));
            }
        }
        for (OptionSpec o : c.options()) {
            if (o.hidden() || o.usageHelp() || o.versionHelp()) {
                continue;
            }
            out.println(".TP");
            StringBuilder names = new StringBuilder();
            for (String n : o.names()) {
                names.append(names.length() > 0 ? ", " : "").append("\\fB").append(roff(n)).append("\\fR");
            }
            if (o.arity().max() > 0) {
                names.append(" \\fI").append(roff(o.paramLabel())).append("\\fR");
            }
            out.println(names);
            out.println(roff(String.join(" ", o.description())));
        }
        List<String> footer = List.of(c.usageMessage().footer());
        if (footer.stream().anyMatch(l -> !l.isBlank())) {
            out.println(".PP");
            out.println(".nf");
            for (String line : footer) {
                if (!line.isBlank()) {
                    out.println(roff(line));
                }
            }
            out.println(".fi");
        }
    }

    /** Text for roff: backslashes and dashes escaped, no line starting with a control character. */
    static String roff(String text) {
        String s = text.replace("\\", "\\e").replace("-", "\\-");
        return s.startsWith(".") || s.startsWith("'") ? "\\&" + s : s;
    }
}
