package io.diskstack.fuse;

import java.io.PrintWriter;

/**
 * Progress on a terminal, one line redrawn in place ({@code [#####     ] 52%}), as qemu-img -p
 * does; elsewhere (a pipe, a log) only the final line, so logs stay short.
 */
final class ProgressBar {
    private static final int WIDTH = 40;
    private final PrintWriter out;
    private final boolean terminal;
    private String last = "";

    ProgressBar(PrintWriter out, boolean terminal) {
        this.out = out;
        this.terminal = terminal;
    }

    /** Shows {@code label} and a {@code DONE TOTAL PERCENT%} progress line. */
    void show(String label, String progress) {
        String[] p = progress.split(" ");
        int percent = p.length == 3 ? Integer.parseInt(p[2].replace("%", "")) : 0;
        int filled = percent * WIDTH / 100;
        last = String.format("%s [%s%s] %3d%% (%s of %s bytes)", label, "#".repeat(filled), " ".repeat(WIDTH - filled),
                percent, p.length > 0 ? p[0] : "0", p.length > 1 ? p[1] : "0");
        if (terminal) {
            out.print("\r" + last);
            out.flush();
        }
    }

    /** Ends the line: on a terminal the bar stays, elsewhere the final state is printed once. */
    void end() {
        if (terminal) {
            out.println();
        } else {
            out.println(last);
        }
        out.flush();
    }
}
