package io.diskstack.fuse;

import java.io.PrintWriter;
import java.util.List;
import java.util.Map;

/**
 * {@code --object secret,id=s0,data=PASS} puts the passphrase in the process's arguments, which
 * every user of the machine can read ({@code ps}, {@code /proc/PID/cmdline}): one warning line
 * per such secret, pointing at {@code file=}. The passphrase itself is never printed.
 */
final class InlineSecretWarning {
    private InlineSecretWarning() {}

    /** Warns about every secret among {@code objects} (parsed from the command line) that has {@code data}. */
    static void check(List<Map<String, Object>> objects, PrintWriter err) {
        for (Map<String, Object> o : objects) {
            if ("secret".equals(o.get("qom-type")) && o.containsKey("data")) {
                err.println("diskstack: warning: --object secret,id=" + Logging.printable(String.valueOf(o.get("id")))
                        + " has its passphrase on the command line (data=), where every user of this machine can "
                        + "read it (ps, /proc/PID/cmdline); put it in a file readable only by you and give "
                        + "file=PATH instead");
                err.flush();
            }
        }
    }
}
