package io.diskstack.fuse;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the {@code diskstack} command in the test's JVM, with its output captured. */
final class InProcessCli {
    record Outcome(int code, String out, String err) {}

    private InProcessCli() {}

    static Outcome diskstack(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Outcome(code, out.toString(), err.toString());
    }
}
