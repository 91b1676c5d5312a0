package io.diskstack.fuse;

import io.diskstack.core.Progress;
import java.io.PrintWriter;

/**
 * Progress on a terminal, one line redrawn in place ({@code [#####     ] 52%}), as qemu-img -p
 * does; elsewhere (a pipe, a log) only the final line, so logs stay short.
 */
final class ProgressBar {
    private static final int WIDTH = 40;
    private final PrintWriter out;
    private final boolean terminal;
    private final String unit;
    private String last = "";
    private String lastTotal = "0";
    private int lastPercent = -1;

    ProgressBar(PrintWriter out, boolean terminal) {
        this(out, terminal, " bytes");
    }

    private ProgressBar(PrintWriter out, boolean terminal, String unit) {
        this.out = out;
        this.terminal = terminal;
        this.unit = unit;
    }

    /** A bar of bytes for standard output, drawn when it is a terminal. */
    static ProgressBar forStdout(PrintWriter out) {
        return new ProgressBar(out, System.console() != null);
    }

    /** A bar of steps of some work (no unit shown), for standard output. */
    static ProgressBar stepsForStdout(PrintWriter out) {
        return new ProgressBar(out, System.console() != null, "");
    }

    /** Shows {@code label} and a {@code DONE TOTAL PERCENT%} progress line. */
    void show(String label, String progress) {
        String[] p = progress.split(" ");
        int percent = p.length == 3 ? Integer.parseInt(p[2].replace("%", "")) : 0;
        draw(label, percent, p.length > 0 ? p[0] : "0", p.length > 1 ? p[1] : "0");
    }

    /** Shows {@code label} at {@code done} of {@code total} bytes. */
    void show(String label, long done, long total) {
        int percent = total <= 0 ? 100 : (int) Math.min(100, done * 100 / total);
        if (percent != lastPercent) {
            draw(label, percent, Long.toString(done), Long.toString(total));
        }
    }

    /** Where a long operation reports to this bar. */
    Progress listener(String label) {
        return (done, total) -> show(label, done, total);
    }

    private void draw(String label, int percent, String done, String total) {
        lastPercent = percent;
        lastTotal = total;
        int filled = percent * WIDTH / 100;
        last = String.format("%s [%s%s] %3d%% (%s of %s%s)", label, "#".repeat(filled), " ".repeat(WIDTH - filled),
                percent, done, total, unit);
        if (terminal) {
            out.print("\r" + last);
            out.flush();
        }
    }

    /** Ends at 100% (of {@code total} if nothing was reported: the work had no steps) and ends the line. */
    void finish(String label, long total) {
        if (lastPercent < 0) {
            draw(label, 100, Long.toString(total), Long.toString(total));
        } else if (lastPercent < 100) {
            draw(label, 100, lastTotal, lastTotal);
        }
        end();
    }

    /** Ends the line: on a terminal the bar stays, elsewhere the final state is printed once. */
    void end() {
        if (terminal) {
            out.println();
        } else if (!last.isEmpty()) {
            out.println(last);
        }
        out.flush();
    }
}
