package io.diskstack.fuse;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** One line per message on stderr; quiet (warnings) by default, {@code -v} info, {@code -vv} debug. */
final class Logging {
    private Logging() {}

    static void configure(int verbosity) {
        Level level = verbosity <= 0 ? Level.WARNING : verbosity == 1 ? Level.INFO : Level.FINE;
        Logger root = Logger.getLogger("");
        for (Handler h : root.getHandlers()) {
            root.removeHandler(h);
        }
        ConsoleHandler handler = new ConsoleHandler();
        handler.setLevel(level);
        handler.setFormatter(new OneLine(verbosity >= 2));
        root.addHandler(handler);
        root.setLevel(level);
        Logger.getLogger("io.diskstack").setLevel(level);
    }

    private static final class OneLine extends Formatter {
        private final boolean stackTraces;

        OneLine(boolean stackTraces) {
            this.stackTraces = stackTraces;
        }

        @Override
        public String format(LogRecord r) {
            String prefix = r.getLevel().intValue() >= Level.SEVERE.intValue() ? "error: "
                    : r.getLevel().intValue() >= Level.WARNING.intValue() ? "warning: " : "";
            StringBuilder out = new StringBuilder("diskstack: ").append(prefix)
                    .append(formatMessage(r).replace('\n', ' ')).append('\n');
            if (stackTraces && r.getThrown() != null) {
                StringWriter w = new StringWriter();
                r.getThrown().printStackTrace(new PrintWriter(w));
                out.append(w);
            }
            return out.toString();
        }
    }
}
