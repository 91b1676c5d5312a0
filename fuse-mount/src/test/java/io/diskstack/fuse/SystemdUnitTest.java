package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * examples/diskstack@.service: a notify unit whose ExecStart, with its instance and environment
 * filled in as systemd does, is a mount command diskstack accepts, in the foreground (the mount
 * process itself must send READY=1; --daemonize would leave systemd watching its parent).
 */
class SystemdUnitTest {
    private static final Path UNIT = Path.of("..", "examples", "diskstack@.service");

    private static Map<String, List<String>> settings() throws Exception {
        Map<String, List<String>> out = new LinkedHashMap<>();
        for (String line : Files.readAllLines(UNIT)) {
            if (line.isBlank() || line.startsWith("#") || line.startsWith("[")) {
                continue;
            }
            int eq = line.indexOf('=');
            out.computeIfAbsent(line.substring(0, eq), k -> new ArrayList<>()).add(line.substring(eq + 1));
        }
        return out;
    }

    @Test
    void aNotifyUnitWhoseCommandDiskstackAccepts() throws Exception {
        Map<String, List<String>> unit = settings();
        assertEquals(List.of("notify"), unit.get("Type"));
        assertEquals(List.of("mixed"), unit.get("KillMode"));
        assertTrue(unit.get("Before").get(0).contains("libvirtd.service"));
        String exec = unit.get("ExecStart").get(0).replace("%i", "vms").replace("${MOUNTPOINT}", "/run/diskstack/vms")
                .replace("$OPTIONS", "-o allow_other");
        List<String> argv = List.of(exec.split(" +"));
        assertEquals("/usr/local/bin/diskstack", argv.get(0));
        MountCommand mount = new MountCommand();
        new CommandLine(mount).parseArgs(argv.subList(2, argv.size()).toArray(new String[0]));
        assertEquals(argv.get(1), "mount");
        assertEquals(List.of(Path.of("/etc/diskstack/vms.json"), Path.of("/run/diskstack/vms")), mount.positional);
        assertEquals(List.of("allow_other"), mount.fuseOptions);
        assertTrue(!mount.daemonize, "systemd watches the process it started");
    }
}
