package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.fuse.InProcessCli.Outcome;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** diskstack luks add-key/remove-key errors never show a passphrase typed in the wrong place. */
class LuksCommandTest {
    private static final String PASS = "Tr0ub4dor&3-typed-by-mistake";

    @TempDir
    Path dir;

    @Test
    void mistypedPassphrasesAreNeverEchoed() throws Exception {
        Path img = dir.resolve("k.luks");
        Files.writeString(dir.resolve("key.txt"), "the real one");
        String key = "secret,id=s0,file=" + dir.resolve("key.txt");
        Outcome created = diskstack("create", "-f", "luks", "--object", key, "-o", "key-secret=s0,iter-time=1",
                img.toString(), "1M");
        assertEquals(0, created.code(), created.err());
        List<String[]> attempts = List.of(
                // the passphrase where the secret id belongs
                new String[] {"luks", "add-key", "--object", key, "--key-secret", PASS, "--new-key-secret", "s0",
                    img.toString()},
                new String[] {"luks", "add-key", "--object", key, "--key-secret", "s0", "--new-key-secret", PASS,
                    img.toString()},
                new String[] {"luks", "remove-key", "--object", key, "--key-secret", PASS, img.toString()},
                // a stray argument, an unknown option, a value where a number belongs
                new String[] {"luks", "add-key", "--object", key, "--key-secret", "s0", "--new-key-secret", "s0",
                    img.toString(), PASS},
                new String[] {"luks", "add-key", "--object", key, "--key-secret", "s0", "--new-key-secret", "s0",
                    "--" + PASS, img.toString()},
                new String[] {"luks", "add-key", "--object", key, "--key-secret", "s0", "--new-key-secret", "s0",
                    "--slot", PASS, img.toString()},
                new String[] {"luks", "remove-key", "--slot", PASS, img.toString()});
        byte[] before = Files.readAllBytes(img);
        for (String[] a : attempts) {
            Outcome r = diskstack(a);
            String shown = String.join(" ", a).replace(PASS, "<pass>");
            assertEquals(2, r.code(), shown + ": " + r.err());
            assertTrue(r.err().startsWith("diskstack: luks "), shown + ": " + r.err());
            assertFalse(r.out().contains(PASS) || r.err().contains(PASS) || r.err().contains(PASS.substring(0, 8)),
                    shown + " echoed the passphrase");
        }
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(img)));
    }
}
