package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import io.diskstack.fuse.testing.MountedDaemon;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A disk for another user, as libvirt hands one to QEMU running as libvirt-qemu: the export's
 * owner, group and mode, enforced by the kernel with allow_other; without allow_other the kernel
 * refuses that user, and the mount says why. Control files stay the mounting user's.
 */
class DiskOwnerMountTest {
    /** nobody:nogroup stand in for libvirt-qemu:kvm; 65533 is a user in neither. */
    private static final String OWNER = "65534";
    private static final String STRANGER = "65533";

    @TempDir
    Path dir;

    @BeforeEach
    void setUp() throws Exception {
        Shell.requireTool("setpriv");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(dir.resolve("config.json"), """
                {"blockdev": [{"driver": "file", "node-name": "f0", "filename": "a.img"},
                              {"driver": "raw", "node-name": "r0", "file": "f0"}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true,
                              "owner": "nobody", "group": "%s", "mode": "0660"}],
                 "create": [{"filename": "a.img", "format": "raw", "size": "8M"}]}
                """.formatted(groupOf(OWNER)));
    }

    private static String groupOf(String uid) {
        return Shell.run("id", "-gn", uid).ok().stdout().strip();
    }

    private static Shell.Result as(String uid, String gid, String command) {
        return Shell.run("setpriv", "--reuid", uid, "--regid", gid, "--clear-groups", "sh", "-c", command);
    }

    private MountedDaemon mount(String... options) {
        List<String> args = new java.util.ArrayList<>(List.of("mount", "-v"));
        for (String o : options) {
            args.addAll(List.of("-o", o));
        }
        args.addAll(List.of(dir.resolve("config.json").toString(), dir.resolve("mnt").toString()));
        return MountedDaemon.start(args, Map.of(), dir.resolve("mnt"));
    }

    @Test
    void theOwnerOpensTheDiskWithAllowOther() throws Exception {
        String gid = Shell.run("id", "-g", OWNER).ok().stdout().strip();
        try (MountedDaemon d = mount("allow_other")) {
            Shell.Result ls = Shell.run("stat", "-c", "%u %g %a", d.disk("disk0").toString()).ok();
            assertEquals(OWNER + " " + gid + " 660", ls.stdout().strip());
            Shell.Result write = as(OWNER, gid, "printf owner-wrote | dd of=" + d.disk("disk0") + " conv=notrunc,fsync"
                    + " status=none && head -c 11 " + d.disk("disk0"));
            assertEquals(0, write.exitCode(), write.stderr());
            assertEquals("owner-wrote", write.stdout());
            // the group may too (mode 0660); anyone else may not
            assertEquals(0, as(STRANGER, gid, "head -c 1 " + d.disk("disk0") + " >/dev/null").exitCode());
            Shell.Result stranger = as(STRANGER, STRANGER, "head -c 1 " + d.disk("disk0"));
            assertTrue(stranger.exitCode() != 0 && stranger.stderr().contains("Permission denied"), stranger.stderr());
            // a chown can only confirm the owner the export names (what libvirt's DAC driver does)
            Shell.run("chown", OWNER + ":" + gid, d.disk("disk0").toString()).ok();
            Shell.Result chown = Shell.run("chown", "0", d.disk("disk0").toString());
            assertTrue(chown.exitCode() != 0 && chown.stderr().contains("Operation not permitted"), chown.stderr());
            // control files stay the mounting user's (0600, 0400 if read-only) in a 0700 folder
            Shell.Result control = as(OWNER, gid, "cat " + d.control("graph"));
            assertTrue(control.exitCode() != 0 && control.stderr().contains("Permission denied"), control.stderr());
            assertEquals("0 0 400", Shell.run("stat", "-c", "%u %g %a", d.control("graph").toString()).ok().stdout().strip());
            assertEquals("0 0 600", Shell.run("stat", "-c", "%u %g %a", d.control("disk0/snapshot-internal").toString())
                    .ok().stdout().strip());
            assertEquals("0 0 700", Shell.run("stat", "-c", "%u %g %a", d.mountpoint().resolve(".control").toString())
                    .ok().stdout().strip());
            assertEquals(0, d.stop());
        }
        assertEquals("owner-wrote", new String(Files.readAllBytes(dir.resolve("a.img")), 0, 11));
    }

    @Test
    void withoutAllowOtherTheOwnerIsRefusedAndTheMountSaysWhy() {
        String gid = Shell.run("id", "-g", OWNER).ok().stdout().strip();
        try (MountedDaemon d = mount()) {
            Shell.Result refused = as(OWNER, gid, "head -c 1 " + d.disk("disk0"));
            assertTrue(refused.exitCode() != 0 && refused.stderr().contains("Permission denied"), refused.stderr());
            assertTrue(d.log().contains("diskstack: warning: export 'disk0' is nobody:" + groupOf(OWNER) + " 0660, but "
                    + "without -o allow_other the kernel lets only root open files in " + d.mountpoint()
                    + "; mount with -o allow_other so that the disk's owner and mode decide"), d.log());
            assertEquals(0, d.stop());
        }
    }

    @Test
    void anUnknownOwnerFailsTheMountBeforeAnythingIsMade() throws Exception {
        Files.writeString(dir.resolve("config.json"), Files.readString(dir.resolve("config.json"))
                .replace("\"nobody\"", "\"no-such-user-here\""));
        Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", dir.resolve("config.json").toString(),
                dir.resolve("mnt").toString()), Map.of());
        assertEquals(2, r.exitCode());
        assertEquals("diskstack: export 'disk0': 'owner' user 'no-such-user-here' does not exist\n", r.stderr());
        assertTrue(!Files.exists(dir.resolve("a.img")), "nothing created");
    }
}
