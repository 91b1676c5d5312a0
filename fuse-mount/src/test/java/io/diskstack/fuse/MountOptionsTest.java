package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.ConfigException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What mount(8) and mount.fuse pass in -o: fstab's own options dropped, FUSE's kept in order. */
class MountOptionsTest {
    @Test
    void fstabOptionsAreDroppedTheRestGoToFuse() {
        MountOptions o = new MountOptions(List.of("rw,defaults,allow_other,nofail,noauto,_netdev,x-systemd.automount",
                "comment=vms,dev,suid,user,ro"));
        assertEquals(List.of("rw", "allow_other", "dev", "suid", "ro"), o.fuseOptions());
        assertTrue(o.allowsOtherUsers());
        assertFalse(new MountOptions(List.of("allow_root")).allowsOtherUsers());
    }

    @Test
    void ioUringIsDiskstacksOwnOption() {
        assertEquals(0, new MountOptions(List.of("rw")).uringEntries());
        MountOptions o = new MountOptions(List.of("rw,io_uring,allow_other"));
        assertEquals(MountOptions.DEFAULT_URING_ENTRIES, o.uringEntries());
        assertEquals(List.of("rw", "allow_other"), o.fuseOptions());
        assertEquals(8, new MountOptions(List.of("io_uring_entries=8,io_uring")).uringEntries());
        ConfigException e = assertThrows(ConfigException.class, () -> new MountOptions(List.of("io_uring_entries=0")));
        assertEquals("mount option 'io_uring_entries=0': entries per CPU must be 1 to 64", e.getMessage());
    }

    @Test
    void theSourceAndTypeAreDiskstacks() {
        ConfigException e = assertThrows(ConfigException.class, () -> new MountOptions(List.of("fsname=x")));
        assertEquals("mount option 'fsname=x' is diskstack's to set", e.getMessage());
    }

    @Test
    void theMountHelperFormIsMountDaemonize() {
        picocli.CommandLine cli = new picocli.CommandLine(new Main());
        assertEquals(List.of("mount", "--daemonize", "/etc/d/vms.json", "/srv/vms", "-o", "rw,allow_other"),
                List.of(Main.asMountHelper(cli, new String[] {"/etc/d/vms.json", "/srv/vms", "-o", "rw,allow_other"})));
        for (String[] args : new String[][] {{"mount", "a", "b"}, {"info", "x.qcow2"}, {"--version"}, {"c.json"},
            {"a", "b", "c"}}) {
            assertEquals(List.of(args), List.of(Main.asMountHelper(cli, args)));
        }
    }
}
