package io.diskstack.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.ConfigException;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** keys.psk as GnuTLS's psktool writes it, and the one-line errors for files that are not. */
class PskKeysTest {
    private static final String OWNER = "object 'tls0' (tls-creds-psk)";
    private static final String KEY = "0123456789abcdef0123456789ABCDEF";

    @TempDir
    Path dir;

    private Path keys(String text) throws IOException {
        return Files.writeString(dir.resolve("keys.psk"), text);
    }

    @Test
    void readsUsersAndKeysSkippingBlankLinesAndCarriageReturns() throws IOException {
        try (PskKeys k = PskKeys.read(OWNER, keys("alice:" + KEY + "\r\n\nbob:00ff\n  \nalice:1111\n"))) {
            assertEquals(2, k.size());
            assertArrayEquals(HexFormat.of().parseHex(KEY), k.key("alice"), "the first line of a user counts");
            assertArrayEquals(new byte[] {0, (byte) 0xff}, k.key("bob"));
            assertNull(k.key("carol"));
            assertFalse(k.toString().contains("00ff"));
        }
    }

    @Test
    void aClientKeepsOnlyItsOwnKey() throws IOException {
        try (PskKeys k = PskKeys.read(OWNER, keys("alice:" + KEY + "\nbob:00ff\n")); PskKeys only = k.only("bob")) {
            assertEquals(1, only.size());
            assertNull(only.key("alice"));
        }
    }

    @Test
    void closeWipesTheKeysAndAnswersNoMore() throws IOException {
        PskKeys k = PskKeys.read(OWNER, keys("bob:00ff\n"));
        k.close();
        assertTrue(k.isWiped());
        assertNull(k.key("bob"), "closed keys answer nothing: a server must not accept the wiped all-zero key");
        assertFalse(k.has("bob"));
    }

    @Test
    void malformedLinesAreNamedByNumberAndNeverShown() throws IOException {
        String secret = "deadbeefcafe";
        assertMalformed("alice:" + KEY + "\n" + secret + "\n", "line 2 is not 'username:hexkey'");
        assertMalformed("\n:" + secret + "\n", "line 2 has an empty username");
        assertMalformed("alice:" + secret + "0\n", "line 1: the key is not an even number of hex digits (2 to 1024)");
        assertMalformed("alice:\n", "line 1: the key is not an even number of hex digits (2 to 1024)");
        assertMalformed("a:00\nalice:" + secret + "zz\n", "line 2: the key is not hex digits");
        assertMalformed("\n\n", null);
    }

    private void assertMalformed(String text, String expected) throws IOException {
        Path file = keys(text);
        ConfigException e = assertThrows(ConfigException.class, () -> PskKeys.read(OWNER, file));
        String want = expected == null ? OWNER + ": '" + file + "' holds no 'username:hexkey' line"
                : OWNER + ": '" + file + "' " + expected;
        assertEquals(want, e.getMessage());
        assertFalse(e.getMessage().contains("deadbeef"), "no key material in " + e.getMessage());
    }

    @Test
    void aMissingFileIsNamed() {
        Path file = dir.resolve("keys.psk");
        ConfigException e = assertThrows(ConfigException.class, () -> PskKeys.read(OWNER, file));
        assertEquals(OWNER + ": '" + file + "' is missing", e.getMessage());
    }

    @Test
    void theDriverChecksEndpointFolderAndUsername() throws IOException {
        keys("alice:" + KEY + "\n");
        ObjectRegistry objects = ObjectRegistry.load();
        Object server = objects.create(TestGraphs.opts("qom-type", "tls-creds-psk", "id", "s", "dir", dir.toString(),
                "endpoint", "server"), dir);
        assertTrue(server instanceof PskTlsCreds p && p.server() && p.kind().equals("psk"));
        PskTlsCreds client = (PskTlsCreds) objects.create(TestGraphs.opts("qom-type", "tls-creds-psk", "id", "c",
                "dir", ".", "username", "alice"), dir);
        assertFalse(client.server(), "endpoint defaults to client, as in QEMU");
        assertEquals("tls-creds 'c' (psk, client, username 'alice')", client.toString());
        ConfigException noUser = assertThrows(ConfigException.class, () -> objects.create(TestGraphs.opts(
                "qom-type", "tls-creds-psk", "id", "d", "dir", dir.toString()), dir));
        assertEquals("object 'd' (tls-creds-psk): username 'qemu' is not in '" + dir.resolve("keys.psk") + "'",
                noUser.getMessage());
        ConfigException noDir = assertThrows(ConfigException.class, () -> objects.create(TestGraphs.opts(
                "qom-type", "tls-creds-psk", "id", "e", "dir", "nope", "endpoint", "server"), dir));
        assertTrue(noDir.getMessage().startsWith("object 'e' (tls-creds-psk): 'dir'"), noDir.getMessage());
        io.diskstack.nbd.testing.TestCertificates.make(dir, dir.resolve("pki"), dir.resolve("pki-client"));
        for (String kind : new String[] {"tls-creds-psk", "tls-creds-x509"}) {
            String folder = kind.equals("tls-creds-psk") ? dir.toString() : dir.resolve("pki").toString();
            ConfigException priority = assertThrows(ConfigException.class, () -> objects.create(TestGraphs.opts(
                    "qom-type", kind, "id", "f", "dir", folder, "endpoint", "server",
                    "priority", "NORMAL:-VERS-TLS1.3"), dir));
            assertTrue(priority.getMessage().contains("'priority'"), kind + ": a restriction we cannot apply is "
                    + "refused, not ignored: " + priority.getMessage());
        }
        objects.close();
        assertTrue(client.keys().isWiped(), "closing the registry wipes the key");
        assertNull(client.keys().key("alice"));
    }
}
