package io.diskstack.nbd;

import io.diskstack.core.ConfigException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The keys of a GnuTLS {@code keys.psk} file, as psktool writes it: one {@code username:hexkey}
 * a line. Blank lines are skipped; the first line of a username counts, as in GnuTLS. Errors name
 * the file and the line number, never a line's content. The bytes are parsed in place so that no
 * key ends up in an immutable String; {@link #close} wipes them.
 */
final class PskKeys implements AutoCloseable {
    /** The longest key psktool makes. */
    private static final int MAX_KEY_BYTES = 512;

    private final Map<String, byte[]> keys;
    private boolean closed;

    private PskKeys(Map<String, byte[]> keys) {
        this.keys = keys;
    }

    /** Reads {@code file}; {@code owner} starts each error line. */
    static PskKeys read(String owner, Path file) {
        byte[] text = CredsFiles.read(owner, file);
        Map<String, byte[]> keys = new LinkedHashMap<>();
        try {
            int line = 0;
            for (int start = 0; start < text.length; ) {
                line++;
                int end = start;
                while (end < text.length && text[end] != '\n') {
                    end++;
                }
                parseLine(owner, file, line, text, start, end, keys);
                start = end + 1;
            }
        } catch (ConfigException e) {
            keys.values().forEach(k -> Arrays.fill(k, (byte) 0));
            throw e;
        } finally {
            Arrays.fill(text, (byte) 0);
        }
        if (keys.isEmpty()) {
            throw new ConfigException(owner + ": '" + file + "' holds no 'username:hexkey' line");
        }
        return new PskKeys(keys);
    }

    private static void parseLine(String owner, Path file, int line, byte[] text, int start, int end,
                                  Map<String, byte[]> keys) {
        while (end > start && isSpace(text[end - 1])) {
            end--;
        }
        if (end == start) {
            return;
        }
        int colon = start;
        while (colon < end && text[colon] != ':') {
            colon++;
        }
        String where = owner + ": '" + file + "' line " + line;
        if (colon == end) {
            throw new ConfigException(where + " is not 'username:hexkey'");
        }
        if (colon == start) {
            throw new ConfigException(where + " has an empty username");
        }
        String username;
        try {
            username = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(text, start, colon - start)).toString();
        } catch (CharacterCodingException e) {
            throw new ConfigException(where + ": the username is not UTF-8");
        }
        int digits = end - colon - 1;
        if (digits == 0 || digits % 2 != 0 || digits / 2 > MAX_KEY_BYTES) {
            throw new ConfigException(where + ": the key is not an even number of hex digits (2 to "
                    + 2 * MAX_KEY_BYTES + ")");
        }
        byte[] key = new byte[digits / 2];
        for (int i = 0; i < key.length; i++) {
            int hi = Character.digit(text[colon + 1 + 2 * i], 16);
            int lo = Character.digit(text[colon + 2 + 2 * i], 16);
            if (hi < 0 || lo < 0) {
                Arrays.fill(key, (byte) 0);
                throw new ConfigException(where + ": the key is not hex digits");
            }
            key[i] = (byte) (hi << 4 | lo);
        }
        byte[] first = keys.putIfAbsent(username, key);
        if (first != null) {
            Arrays.fill(key, (byte) 0);
        }
    }

    private static boolean isSpace(byte b) {
        return b == ' ' || b == '\t' || b == '\r';
    }

    /**
     * A copy of the user's key (the caller wipes it), or null if the file has no such user or
     * the keys were closed (wiped): a server whose object was closed under it must refuse
     * everyone, never accept the wiped all-zero key.
     */
    synchronized byte[] key(String username) {
        if (closed) {
            return null;
        }
        byte[] k = keys.get(username);
        return k == null ? null : k.clone();
    }

    synchronized boolean has(String username) {
        return !closed && keys.containsKey(username);
    }

    /** Only {@code username}'s entry: a client needs no other key in memory. */
    synchronized PskKeys only(String username) {
        byte[] k = keys.get(username);
        return new PskKeys(k == null ? Map.of() : Map.of(username, k.clone()));
    }

    /** True once {@link #close} zeroed every key in memory. */
    synchronized boolean isWiped() {
        return closed && keys.values().stream().allMatch(k -> Arrays.equals(k, new byte[k.length]));
    }

    int size() {
        return keys.size();
    }

    @Override
    public synchronized void close() {
        closed = true;
        keys.values().forEach(k -> Arrays.fill(k, (byte) 0));
    }

    @Override
    public String toString() {
        return "psk keys (" + keys.size() + " users)";
    }
}
