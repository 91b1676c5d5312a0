package io.diskstack.filters.luks;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import javax.crypto.Mac;

/** The hashes LUKS names in hash-spec, af.hash, kdf.hash and essiv:HASH, mapped to the JDK's. */
enum LuksHash {
    SHA1("sha1", "SHA-1", "HmacSHA1", 20, 64),
    SHA224("sha224", "SHA-224", "HmacSHA224", 28, 64),
    SHA256("sha256", "SHA-256", "HmacSHA256", 32, 64),
    SHA384("sha384", "SHA-384", "HmacSHA384", 48, 128),
    SHA512("sha512", "SHA-512", "HmacSHA512", 64, 128);

    final String luksName;
    final String digestName;
    final String macName;
    final int digestLength;
    final int blockLength;

    LuksHash(String luksName, String digestName, String macName, int digestLength, int blockLength) {
        this.luksName = luksName;
        this.digestName = digestName;
        this.macName = macName;
        this.digestLength = digestLength;
        this.blockLength = blockLength;
    }

    /** The hash for a LUKS name ("sha256", also "SHA-256"), or null if unsupported. */
    static LuksHash byName(String name) {
        String n = name.toLowerCase(Locale.ROOT).replace("-", "");
        for (LuksHash h : values()) {
            if (h.luksName.equals(n)) {
                return h;
            }
        }
        return null;
    }

    static String supportedNames() {
        StringBuilder b = new StringBuilder();
        for (LuksHash h : values()) {
            b.append(b.length() == 0 ? "" : ", ").append(h.luksName);
        }
        return b.toString();
    }

    MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance(digestName);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks " + digestName, e);
        }
    }

    Mac newMac() {
        try {
            return Mac.getInstance(macName);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks " + macName, e);
        }
    }
}
