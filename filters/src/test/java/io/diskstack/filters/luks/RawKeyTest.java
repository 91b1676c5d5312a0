package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/** Keys handed to the JDK are wiped after init, and work as SecretKeySpec does. */
class RawKeyTest {
    @Test
    void worksLikeSecretKeySpecAndWipes() throws Exception {
        byte[] key = new byte[32];
        Arrays.fill(key, (byte) 7);
        byte[] data = new byte[64];
        RawKey raw = new RawKey(key, "AES");
        Cipher a = Cipher.getInstance("AES/ECB/NoPadding");
        a.init(Cipher.ENCRYPT_MODE, raw);
        Cipher b = Cipher.getInstance("AES/ECB/NoPadding");
        b.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"));
        assertArrayEquals(b.doFinal(data), a.doFinal(data));
        Mac m1 = Mac.getInstance("HmacSHA256");
        m1.init(new RawKey(key, "HmacSHA256"));
        Mac m2 = Mac.getInstance("HmacSHA256");
        m2.init(new SecretKeySpec(key, "HmacSHA256"));
        assertArrayEquals(m2.doFinal(data), m1.doFinal(data));
        raw.close();
        assertTrue(raw.isDestroyed());
        assertThrows(IllegalStateException.class, raw::getEncoded);
        Field f = RawKey.class.getDeclaredField("key");
        f.setAccessible(true);
        assertArrayEquals(new byte[32], (byte[]) f.get(raw), "wiped");
        // The cipher initialised with it still works: it copied what it needed at init.
        assertArrayEquals(b.doFinal(data), a.doFinal(data));
    }

    /** No sector cipher keeps a SecretKeySpec (an unwipeable copy of the volume key) in a field. */
    @Test
    void sectorCiphersKeepNoKeySpec() throws Exception {
        byte[] key = new byte[64];
        Arrays.fill(key, (byte) 9);
        for (String[] m : new String[][] {{"xts-plain64", "64"}, {"cbc-essiv:sha256", "32"}, {"cbc-plain64", "16"},
            {"ecb", "32"}}) {
            CipherSpec spec = CipherSpec.parse("aes", m[0], Integer.parseInt(m[1]));
            try (SectorCipher c = spec.newCipher(Arrays.copyOf(key, spec.keyBytes()), 512)) {
                for (Class<?> k = c.getClass(); k != Object.class; k = k.getSuperclass()) {
                    for (Field f : k.getDeclaredFields()) {
                        assertFalse(java.security.Key.class.isAssignableFrom(f.getType()), k + "." + f.getName());
                    }
                }
            }
        }
    }
}
