package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.core.testing.Shell.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.testing.MountedDaemon;
import io.diskstack.core.testing.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LUKS through the mount: QEMU's images and ours, both ways; key slots by control file and command. */
class LuksMountTest {
    private static final String PASS = "mount test passphrase";

    @TempDir
    Path dir;

    @BeforeEach
    void keys() throws Exception {
        Shell.requireTool("qemu-img");
        Shell.requireTool("qemu-io");
        Shell.requireTool("cryptsetup");
        Files.writeString(dir.resolve("key.txt"), PASS);
        Files.writeString(dir.resolve("key2.txt"), "second passphrase");
    }

    private String secret(String id, String file) {
        return "secret,id=" + id + ",file=" + dir.resolve(file);
    }

    private Path config(String image, boolean create) throws Exception {
        String createPart = create ? """
                 "create": [{"filename": "%s", "format": "luks", "size": "32M", "key-secret": "s0",
                             "iter-time": 10}],
                """.formatted(image) : "";
        Path c = dir.resolve("config.json");
        Files.writeString(c, """
                {"objects": [{"qom-type": "secret", "id": "s0", "file": "key.txt"},
                             {"qom-type": "secret", "id": "s1", "file": "key2.txt"}],
                %s "blockdev": [{"driver": "file", "node-name": "f0", "filename": "%s"},
                              {"driver": "luks", "node-name": "l0", "file": "f0", "key-secret": "s0"}],
                 "exports": [{"id": "disk0", "node-name": "l0", "writable": true}]}
                """.formatted(createPart, image));
        return c;
    }

    @Test
    void qemuImageReadAndWrittenThroughTheMount() throws Exception {
        Path img = dir.resolve("q.luks");
        // Shell retries qemu-img's PBKDF2 timing flake ("Unable to get accurate CPU usage")
        run("qemu-img", "create", "-f", "luks", "--object", secret("s0", "key.txt"), "-o",
                "key-secret=s0,iter-time=10", img.toString(), "32M").ok();
        String opts = "driver=luks,key-secret=s0,file.filename=" + img;
        run("qemu-io", "--object", secret("s0", "key.txt"), "--image-opts", opts, "-c", "write -P 0x3c 1M 1M").ok();
        Path random = dir.resolve("random.bin");
        sh("head -c 3000000 /dev/urandom > " + random).ok();
        try (MountedDaemon d = MountedDaemon.mount(config("q.luks", false), dir.resolve("mnt"))) {
            Path disk = d.disk("disk0");
            assertEquals(32L << 20, Files.size(disk));
            sh("cmp <(head -c 1M /dev/zero | tr '\\0' '\\074') <(dd if=" + disk + " bs=1M skip=1 count=1 status=none)")
                    .ok();
            // Unaligned, then direct I/O; the core does the read-modify-write of partial sectors.
            sh("dd if=" + random + " of=" + disk + " bs=1000 seek=5001 conv=notrunc,fsync status=none").ok();
            sh("head -c 1M " + random + " | dd of=" + disk + " bs=64k seek=320 oflag=direct conv=notrunc status=none")
                    .ok();
            sh("cmp " + random + " <(dd if=" + disk + " bs=1000 skip=5001 count=3000 status=none)").ok();
            byte[] probe = java.util.Arrays.copyOfRange(Files.readAllBytes(random), 0, 32);
            assertFalse(contains(Files.readAllBytes(img), probe), "plaintext found in the image");
            assertTrue(contains(Files.readAllBytes(random), probe), "the search itself works");
            String slots = Files.readString(d.control("nodes/l0/keyslots"));
            assertTrue(slots.startsWith("0 pbkdf2 sha256"), slots);
            assertFalse(Files.readString(d.control("graph")).contains(PASS));
            Files.writeString(d.control("nodes/l0/add-key"), "secret=s1 iter-time=10\n");
            assertTrue(Files.readString(d.control("nodes/l0/keyslots")).contains("\n1 pbkdf2"));
        }
        // What we wrote, read by QEMU with the key slot we added.
        run("qemu-img", "convert", "--object", secret("s1", "key2.txt"), "--image-opts",
                opts.replace("key-secret=s0", "key-secret=s1"), "-O", "raw", dir.resolve("out.raw").toString()).ok();
        sh("cmp " + random + " <(dd if=" + dir.resolve("out.raw") + " bs=1000 skip=5001 count=3000 status=none)").ok();
        sh("cmp <(head -c 1M " + random + ") <(dd if=" + dir.resolve("out.raw") + " bs=64k skip=320 count=16 status=none)")
                .ok();
        run("cryptsetup", "open", "--test-passphrase", "--key-file", dir.resolve("key2.txt").toString(), img.toString())
                .ok();
    }

    private static boolean contains(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }

    @Test
    void configCreatesTheImageAndDataSurvivesRemount() throws Exception {
        Path c = config("new.luks", true);
        try (MountedDaemon d = MountedDaemon.mount(c, dir.resolve("mnt"))) {
            sh("printf 'secret data' | dd of=" + d.disk("disk0") + " bs=1 seek=4000 conv=notrunc,fsync status=none").ok();
        }
        run("cryptsetup", "luksDump", dir.resolve("new.luks").toString()).ok();
        try (MountedDaemon d = MountedDaemon.mount(c, dir.resolve("mnt"))) {
            assertEquals("secret data", sh("dd if=" + d.disk("disk0") + " bs=1 skip=4000 count=11 status=none").ok()
                    .stdout());
        }
        assertNotEquals(0, sh("grep -c 'secret data' " + dir.resolve("new.luks")).exitCode());
    }

    @Test
    void wrongPassphraseExitsTwoAndChangesNothing() throws Exception {
        Path c = config("w.luks", true);
        try (MountedDaemon d = MountedDaemon.mount(c, dir.resolve("mnt"))) {
            assertTrue(Files.exists(d.disk("disk0")));
        }
        byte[] before = Files.readAllBytes(dir.resolve("w.luks"));
        Files.writeString(dir.resolve("key.txt"), "wrong");
        Shell.Result r = MountedDaemon.runToCompletion(List.of("mount", c.toString(), dir.resolve("mnt").toString()),
                Map.of());
        assertEquals(2, r.exitCode(), r.stderr());
        assertEquals("diskstack: blockdev 'l0' (luks): no key slot opens with secret 's0'\n", r.stderr());
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(dir.resolve("w.luks"))));
    }

    @Test
    void luksCommandsAddListAndRemoveKeys() throws Exception {
        Path img = dir.resolve("cli.luks");
        Shell.Result created = MountedDaemon.runToCompletion(List.of("create", "-f", "luks", "--object",
                secret("s0", "key.txt"), "-o", "key-secret=s0,iter-time=10,format=luks2", img.toString(), "4M"), Map.of());
        assertEquals(0, created.exitCode(), created.stderr());
        Shell.Result added = MountedDaemon.runToCompletion(List.of("luks", "add-key", "--object", secret("s0", "key.txt"),
                "--object", secret("s1", "key2.txt"), "--key-secret", "s0", "--new-key-secret", "s1", "--iter-time", "10",
                img.toString()), Map.of());
        assertEquals(0, added.exitCode(), added.stderr());
        assertEquals("added key slot 1\n", added.stdout());
        run("cryptsetup", "open", "--test-passphrase", "--key-slot", "1", "--key-file",
                dir.resolve("key2.txt").toString(), img.toString()).ok();
        Shell.Result list = MountedDaemon.runToCompletion(List.of("luks", "keyslots", img.toString()), Map.of());
        assertTrue(list.stdout().startsWith("0 pbkdf2 sha256") && list.stdout().contains("\n1 pbkdf2"),
                list.stdout() + list.stderr());
        Shell.Result removed = MountedDaemon.runToCompletion(List.of("luks", "remove-key", "--object",
                secret("s0", "key.txt"), "--key-secret", "s0", img.toString()), Map.of());
        assertEquals("removed key slot 0\n", removed.stdout(), removed.stderr());
        Shell.Result last = MountedDaemon.runToCompletion(List.of("luks", "remove-key", "--slot", "1", img.toString()),
                Map.of());
        assertEquals(2, last.exitCode());
        assertTrue(last.stderr().contains("last active"), last.stderr());
        Shell.Result wrong = MountedDaemon.runToCompletion(List.of("luks", "add-key", "--object",
                secret("s0", "key.txt"), "--object", secret("s1", "key2.txt"), "--key-secret", "s0",
                "--new-key-secret", "s1", img.toString()), Map.of());
        assertEquals(2, wrong.exitCode());
        assertEquals("diskstack: '" + img + "': no key slot opens with secret 's0'\n", wrong.stderr());
        assertFalse(wrong.stderr().contains(PASS));
    }

    @Test
    void luksCommandsRefuseAMountedImage() throws Exception {
        Path c = config("busy.luks", true);
        Path img = dir.resolve("busy.luks");
        try (MountedDaemon d = MountedDaemon.mount(c, dir.resolve("mnt"))) {
            byte[] before = Files.readAllBytes(img);
            Shell.Result added = MountedDaemon.runToCompletion(List.of("luks", "add-key", "--object",
                    secret("s0", "key.txt"), "--object", secret("s1", "key2.txt"), "--key-secret", "s0",
                    "--new-key-secret", "s1", "--iter-time", "10", img.toString()), Map.of());
            assertEquals(2, added.exitCode(), added.stderr());
            assertTrue(added.stderr().startsWith("diskstack: '" + img + "': is in use")
                    && added.stderr().indexOf('\n') == added.stderr().length() - 1, added.stderr());
            Shell.Result killed = MountedDaemon.runToCompletion(List.of("luks", "remove-key", "--slot", "0",
                    img.toString()), Map.of());
            assertEquals(2, killed.exitCode(), killed.stderr());
            assertTrue(killed.stderr().contains("is in use"), killed.stderr());
            assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(img)), "nothing written");
            // The mount's own control file still edits the slots.
            Files.writeString(d.control("nodes/l0/add-key"), "secret=s1 iter-time=10\n");
        }
        run("cryptsetup", "open", "--test-passphrase", "--key-slot", "1", "--key-file",
                dir.resolve("key2.txt").toString(), img.toString()).ok();
    }
}
