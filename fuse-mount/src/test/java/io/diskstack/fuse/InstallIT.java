package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * diskstack installed as a system tool, from the packaged jar: {@code scripts/install} into a
 * staging root ({@code DESTDIR}), the staged launcher run in place, then {@code mount -t
 * fuse.diskstack} and an fstab line ({@code mount -T}) as mount(8) runs them, and
 * {@code --uninstall}. mount(8) runs helpers with the default PATH, so the staged
 * {@code usr/local} is bound over {@code /usr/local} in a mount namespace of the test's own.
 */
class InstallIT {
    private static final Path JAR = Path.of(System.getProperty("diskstack.jar", "target/diskstack.jar"))
            .toAbsolutePath();
    private static final Path SCRIPTS = Path.of("..", "scripts").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    private Shell.Result install(Path root, String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of("env", "DESTDIR=" + root, "JAR=" + JAR,
                SCRIPTS.resolve("install").toString()));
        cmd.addAll(List.of(args));
        return Shell.run(Duration.ofMinutes(2), null, cmd);
    }

    @Test
    void installMountThroughMountAndFstabUninstall() throws Exception {
        assertTrue(Files.isRegularFile(JAR), "the packaged jar " + JAR + " (run after mvn package)");
        Shell.requireFuse();
        for (String tool : List.of("unshare", "mount.fuse", "groff", "qemu-img")) {
            Shell.requireTool(tool);
        }
        Path root = dir.resolve("root");
        Shell.Result installed = install(root);
        assertEquals(0, installed.exitCode(), installed.stderr());
        Path usr = root.resolve("usr/local");
        Path launcher = usr.resolve("bin/diskstack");
        Path man = usr.resolve("share/man/man1/diskstack.1");
        assertTrue(Files.isExecutable(launcher));
        assertEquals(Files.size(JAR), Files.size(usr.resolve("lib/diskstack/diskstack.jar")));
        // the staged launcher finds its jar from its own location
        assertEquals("diskstack 0.1.0\n", Shell.run(launcher.toString(), "--version").ok().stdout());
        Shell.Result manPage = Shell.run("groff", "-man", "-Tutf8", "-ww", "-z", man.toString()).ok();
        assertEquals("", manPage.stderr());
        assertTrue(Files.readString(man).contains(".SS \"diskstack info\""));

        Path config = dir.resolve("vms.json");
        Files.writeString(config, """
                {"blockdev": [{"driver": "file", "node-name": "f0", "filename": "vm0.qcow2"},
                              {"driver": "qcow2", "node-name": "q0", "file": "f0"}],
                 "exports": [{"id": "disk0", "node-name": "q0", "writable": true}],
                 "create": [{"filename": "vm0.qcow2", "format": "qcow2", "size": "32M"}]}
                """);
        Path mnt = dir.resolve("mnt");
        Files.createDirectories(mnt);
        Path fstab = dir.resolve("fstab");
        Files.writeString(fstab, config + " " + mnt + " fuse.diskstack defaults,allow_other,nofail 0 0\n");
        Path data = dir.resolve("data");
        Shell.run("dd", "if=/dev/urandom", "of=" + data, "bs=1M", "count=3", "status=none").ok();
        Path script = dir.resolve("mounts.sh");
        Files.writeString(script, """
                set -eu
                USR=$1 CFG=$2 MNT=$3 FSTAB=$4 DATA=$5
                mount --bind "$USR" /usr/local
                # until no process serves $MNT any more (a clean exit closes the image first)
                daemon_gone() {
                  for i in $(seq 600); do
                    busy=no
                    for c in /proc/[0-9]*/cmdline; do
                      if { tr '\\0' ' ' < "$c"; } 2>/dev/null | grep -q -- "--daemon-child .*$MNT"; then busy=yes; break; fi
                    done
                    [ $busy = no ] && return 0
                    sleep 0.1
                  done
                  echo "the daemon serving $MNT did not exit" >&2
                  return 1
                }
                mount -t fuse.diskstack "$CFG" "$MNT" -o allow_other
                grep " $MNT " /proc/mounts
                dd if="$DATA" of="$MNT/disk0" bs=1M conv=fsync,notrunc status=none
                umount "$MNT"
                daemon_gone
                mount -T "$FSTAB" "$MNT"
                grep " $MNT " /proc/mounts
                cmp -n "$(stat -c %s "$DATA")" "$DATA" "$MNT/disk0"
                umount "$MNT"
                daemon_gone
                """);
        Shell.Result mounts = Shell.run(Duration.ofMinutes(3), null, List.of("unshare", "--mount", "--propagation",
                "private", "bash", script.toString(), usr.toString(), config.toString(), mnt.toString(),
                fstab.toString(), data.toString()));
        assertEquals(0, mounts.exitCode(), mounts.stdout() + mounts.stderr());
        String[] lines = mounts.stdout().split("\n");
        assertEquals(2, lines.length, mounts.stdout());
        for (String line : lines) {
            assertTrue(line.startsWith(config + " " + mnt + " fuse.diskstack rw,") && line.contains(",allow_other"), line);
        }
        assertEquals("", mounts.stderr());
        Path image = dir.resolve("vm0.qcow2");
        assertTrue(Shell.run("qemu-img", "info", "--output=json", image.toString()).ok().stdout()
                .contains("\"dirty-flag\": false"), "closed cleanly");
        Shell.run("qemu-img", "check", image.toString()).ok();
        Shell.run("qemu-img", "compare", "-f", "raw", "-F", "qcow2", data.toString(), image.toString()).ok();

        Path other = usr.resolve("bin/other-tool");
        Files.writeString(other, "not ours");
        Shell.Result removed = install(root, "--uninstall");
        assertEquals(0, removed.exitCode(), removed.stderr());
        assertFalse(Files.exists(launcher) || Files.exists(man) || Files.exists(usr.resolve("lib/diskstack")));
        assertTrue(Files.exists(other), "only diskstack's files go");
    }
}
