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

    /** From now on, messages go to syslog (a daemon without a terminal), or nowhere if there is none. */
    static void toSyslog(int verbosity) {
        Level level = verbosity <= 0 ? Level.WARNING : verbosity == 1 ? Level.INFO : Level.FINE;
        Logger root = Logger.getLogger("");
        for (Handler h : root.getHandlers()) {
            root.removeHandler(h);
        }
        SyslogHandler syslog = SyslogHandler.system();
        if (syslog != null) {
            syslog.setLevel(level);
            syslog.setFormatter(new OneLine(false));
            root.addHandler(syslog);
        }
    }

    /**
     * A message as one line: any control character left in it (text from a damaged image that a
     * driver did not escape) is shown as {@code \xNN}, so no message can end early or fake another.
     */
    static String printable(String message) {
        StringBuilder b = null;
        for (int i = 0; i < message.length(); i++) {
            char c = message.charAt(i);
            boolean control = c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\u2028' || c == '\u2029';
            if (control && b == null) {
                b = new StringBuilder(message.length() + 16).append(message, 0, i);
            }
            if (b != null) {
                if (control) {
                    b.append(String.format("\\x%02x", (int) c & 0xff));
                } else {
                    b.append(c);
                }
            }
        }
        return b == null ? message : b.toString();
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
                    .append(printable(formatMessage(r))).append('\n');
            if (stackTraces && r.getThrown() != null) {
                StringWriter w = new StringWriter();
                r.getThrown().printStackTrace(new PrintWriter(w));
                out.append(w);
            }
            return out.toString();
        }
    }
}
