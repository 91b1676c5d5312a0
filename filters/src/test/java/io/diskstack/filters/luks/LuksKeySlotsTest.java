package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.ConfigException;
import io.diskstack.core.objects.Secret;
import io.diskstack.core.testing.TestGraphs;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The command-line key slot edits (diskstack luks add-key/remove-key) and their exclusion. */
class LuksKeySlotsTest {
    @TempDir
    Path dir;

    private static Secret secret(String id, String pass) {
        return new Secret(id, pass.getBytes(StandardCharsets.UTF_8));
    }

    @ParameterizedTest
    @ValueSource(strings = {"luks1", "luks2"})
    void editsOfAnImageInUseAreRefused(String format) throws Exception {
        Path img = dir.resolve("k.img");
        LuksTesting.create(img, 1 << 20, "format", format);
        byte[] before;
        BlockGraph g = TestGraphs.newGraph(dir);
        try {
            LuksTesting.openLuks(g, "k.img");
            before = Files.readAllBytes(img);
            ConfigException add = assertThrows(ConfigException.class, () -> LuksKeySlots.addKey(img,
                    secret("s0", LuksTesting.PASS), secret("s1", "new one"), -1, 1));
            assertTrue(add.getMessage().startsWith("'" + img + "': is in use"), add.getMessage());
            assertFalse(add.getMessage().contains("\n"));
            ConfigException kill = assertThrows(ConfigException.class, () -> LuksKeySlots.killSlot(img, 0));
            assertTrue(kill.getMessage().contains("is in use"), kill.getMessage());
            ConfigException remove = assertThrows(ConfigException.class,
                    () -> LuksKeySlots.removeKey(img, secret("s0", LuksTesting.PASS)));
            assertTrue(remove.getMessage().contains("is in use"), remove.getMessage());
            assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(img)), "nothing written");
        } finally {
            g.close();
        }
        // Closed: the edits work, and the image opens with the new passphrase.
        assertEquals(1, LuksKeySlots.addKey(img, secret("s0", LuksTesting.PASS), secret("s1", "new one"), -1, 1));
        assertEquals(0, LuksKeySlots.removeKey(img, secret("s0", LuksTesting.PASS)));
        ConfigException last = assertThrows(ConfigException.class, () -> LuksKeySlots.killSlot(img, 1));
        assertTrue(last.getMessage().contains("last active"), last.getMessage());
        assertEquals("1 pbkdf2", LuksKeySlots.listSlots(img).substring(0, 8));
    }
}
