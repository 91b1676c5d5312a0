package io.diskstack.filters.luks;

import java.util.Locale;

/**
 * A LUKS cipher in dm-crypt terms: {@code aes} + {@code xts-plain64} (LUKS1's cipher-name and
 * cipher-mode) or {@code aes-xts-plain64} (LUKS2's encryption), with its key length.
 *
 * @param keyBytes the whole key: both halves for XTS (64 for AES-256-XTS)
 */
record CipherSpec(Mode mode, IvMode ivMode, LuksHash ivHash, int keyBytes) {
    /** Block cipher modes; XTS takes two keys, so its key is twice the AES key. */
    enum Mode { XTS, CBC, ECB }

    /** dm-crypt IV generators (the part of the mode after the dash). */
    enum IvMode { NONE, PLAIN, PLAIN64, ESSIV, NULL }

    static final String CIPHER = "aes";

    /** From LUKS1's cipher-name and cipher-mode. */
    static CipherSpec parse(String cipherName, String cipherMode, int keyBytes) {
        if (!cipherName.toLowerCase(Locale.ROOT).equals(CIPHER)) {
            throw new IllegalArgumentException("cipher '" + cipherName + "' is not supported (supported: aes)");
        }
        String m = cipherMode.toLowerCase(Locale.ROOT);
        int dash = m.indexOf('-');
        String modeName = dash < 0 ? m : m.substring(0, dash);
        String iv = dash < 0 ? "" : m.substring(dash + 1);
        Mode mode = switch (modeName) {
            case "xts" -> Mode.XTS;
            case "cbc" -> Mode.CBC;
            case "ecb" -> Mode.ECB;
            default -> throw new IllegalArgumentException("cipher mode '" + cipherMode
                    + "' is not supported (supported: xts, cbc, ecb)");
        };
        IvMode ivMode;
        LuksHash ivHash = null;
        if (mode == Mode.ECB) {
            if (!iv.isEmpty() && !iv.equals("null")) {
                throw new IllegalArgumentException("cipher mode '" + cipherMode + "': ecb takes no IV generator");
            }
            ivMode = IvMode.NONE;
        } else {
            String ivName = iv;
            String hashName = null;
            int colon = iv.indexOf(':');
            if (colon >= 0) {
                ivName = iv.substring(0, colon);
                hashName = iv.substring(colon + 1);
            }
            ivMode = switch (ivName) {
                case "plain" -> IvMode.PLAIN;
                case "plain64" -> IvMode.PLAIN64;
                case "essiv" -> IvMode.ESSIV;
                case "null" -> IvMode.NULL;
                case "" -> throw new IllegalArgumentException("cipher mode '" + cipherMode + "' names no IV generator");
                default -> throw new IllegalArgumentException("cipher mode '" + cipherMode
                        + "': IV generator '" + ivName + "' is not supported (supported: plain, plain64, essiv:HASH, null)");
            };
            if (ivMode == IvMode.ESSIV) {
                if (hashName == null) {
                    throw new IllegalArgumentException("cipher mode '" + cipherMode + "': essiv needs a hash (essiv:sha256)");
                }
                ivHash = LuksHash.byName(hashName);
                if (ivHash == null || !validAesKey(ivHash.digestLength)) {
                    throw new IllegalArgumentException("cipher mode '" + cipherMode + "': essiv hash '" + hashName
                            + "' is not supported (supported: sha256)");
                }
            }
        }
        int aesKey = mode == Mode.XTS ? keyBytes / 2 : keyBytes;
        if ((mode == Mode.XTS && keyBytes % 2 != 0) || !validAesKey(aesKey)) {
            throw new IllegalArgumentException("key size " + keyBytes + " bytes does not fit aes-" + modeName + " (valid: "
                    + (mode == Mode.XTS ? "32, 48, 64" : "16, 24, 32") + ")");
        }
        return new CipherSpec(mode, ivMode, ivHash, keyBytes);
    }

    /** From LUKS2's encryption string ({@code aes-xts-plain64}). */
    static CipherSpec parseLuks2(String encryption, int keyBytes) {
        int dash = encryption.indexOf('-');
        if (dash < 0) {
            throw new IllegalArgumentException("encryption '" + encryption + "' is not cipher-mode-iv");
        }
        // The LUKS2 spec's table writes "aes-cbc:essiv:sha256"; dm-crypt writes "aes-cbc-essiv:sha256".
        String rest = encryption.substring(dash + 1).replaceFirst("^cbc:", "cbc-");
        return parse(encryption.substring(0, dash), rest, keyBytes);
    }

    private static boolean validAesKey(int n) {
        return n == 16 || n == 24 || n == 32;
    }

    /** LUKS1's cipher-mode: {@code xts-plain64}, {@code cbc-essiv:sha256}, {@code ecb}. */
    String luks1Mode() {
        String m = mode.name().toLowerCase(Locale.ROOT);
        return switch (ivMode) {
            case NONE -> m;
            case ESSIV -> m + "-essiv:" + ivHash.luksName;
            default -> m + "-" + ivMode.name().toLowerCase(Locale.ROOT);
        };
    }

    /** LUKS2's encryption: {@code aes-xts-plain64}. */
    String luks2Encryption() {
        return CIPHER + "-" + luks1Mode();
    }

    /** A new cipher instance (not thread-safe) for sectors of {@code sectorSize} bytes. */
    SectorCipher newCipher(byte[] key, int sectorSize) {
        if (key.length != keyBytes) {
            throw new IllegalArgumentException("key is " + key.length + " bytes, cipher wants " + keyBytes);
        }
        return switch (mode) {
            case XTS -> new XtsCipher(this, key, sectorSize);
            case CBC -> new CbcCipher(this, key, sectorSize);
            case ECB -> new EcbCipher(key, sectorSize);
        };
    }

    @Override
    public String toString() {
        return luks2Encryption() + " " + (keyBytes * 8) + "-bit";
    }
}
