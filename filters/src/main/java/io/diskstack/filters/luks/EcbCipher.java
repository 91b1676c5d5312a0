package io.diskstack.filters.luks;

import java.security.GeneralSecurityException;
import javax.crypto.Cipher;

/** AES-ECB (cipher-mode "ecb"): no IV; weak, but LUKS allows it and QEMU can write it. */
final class EcbCipher extends SectorCipher {
    private final Cipher enc;
    private final Cipher dec;

    EcbCipher(byte[] key, int sectorSize) {
        super(sectorSize);
        try (RawKey k = new RawKey(key, "AES")) {
            enc = Cipher.getInstance("AES/ECB/NoPadding");
            enc.init(Cipher.ENCRYPT_MODE, k);
            dec = Cipher.getInstance("AES/ECB/NoPadding");
            dec.init(Cipher.DECRYPT_MODE, k);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/ECB/NoPadding", e);
        }
    }

    @Override
    void encryptChunk(int len, long ivSector) {
        run(enc, len);
    }

    @Override
    void decryptChunk(int len, long ivSector) {
        run(dec, len);
    }

    private void run(Cipher c, int len) {
        try {
            c.update(in, 0, len, out, 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-ECB", e);
        }
    }
}
