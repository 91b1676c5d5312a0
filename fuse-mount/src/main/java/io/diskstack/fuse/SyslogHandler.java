package io.diskstack.fuse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;

/**
 * Log lines to syslog (the journal reads the same socket), as a daemonized mount writes them
 * once it no longer has a terminal: {@code <PRI>MMM dd HH:mm:ss diskstack[PID]: message}, the
 * facility {@code daemon}. Lines are dropped if there is no syslog socket.
 */
final class SyslogHandler extends Handler {
    private static final int FACILITY_DAEMON = 3;
    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("MMM ppd HH:mm:ss", Locale.ROOT);
    private final String socket;
    private final long pid = ProcessHandle.current().pid();

    SyslogHandler(String socket) {
        this.socket = socket;
    }

    /** The system's syslog socket, or null if there is none. */
    static SyslogHandler system() {
        return Files.exists(Path.of("/dev/log")) ? new SyslogHandler("/dev/log") : null;
    }

    @Override
    public void publish(LogRecord r) {
        if (!isLoggable(r)) {
            return;
        }
        int severity = r.getLevel().intValue() >= Level.SEVERE.intValue() ? 3
                : r.getLevel().intValue() >= Level.WARNING.intValue() ? 4
                : r.getLevel().intValue() >= Level.INFO.intValue() ? 6 : 7;
        String text = getFormatter() != null ? getFormatter().formatMessage(r) : r.getMessage();
        String line = "<" + (FACILITY_DAEMON * 8 + severity) + ">" + ZonedDateTime.now().format(STAMP)
                + " diskstack[" + pid + "]: " + Logging.printable(text == null ? "" : text);
        try {
            UnixDatagram.send(socket, line);
        } catch (IOException e) {
            // nowhere left to say it
        }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
}
