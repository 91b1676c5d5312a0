package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.NotifySocket;
import java.nio.file.Path;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A daemonized mount's log lines, as syslog takes them on its datagram socket. */
class SyslogHandlerTest {
    @TempDir
    Path dir;

    @Test
    void oneDatagramPerLineWithPriorityTagAndPid() throws Exception {
        try (NotifySocket log = new NotifySocket(dir.resolve("log").toString())) {
            SyslogHandler h = new SyslogHandler(log.address());
            h.setFormatter(new java.util.logging.SimpleFormatter());
            h.publish(new LogRecord(Level.WARNING, "export 'disk0': a\nsecond line"));
            String line = log.receive(10);
            // facility daemon (3) * 8 + warning (4); control characters escaped, one line
            assertTrue(line.matches("<28>[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} diskstack\\[" + ProcessHandle.current().pid()
                    + "\\]: export 'disk0': a\\\\x0asecond line"), line);
        }
    }
}
