package io.diskstack.filters.luks;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Views of byte arrays as integers, and the fixed-size strings of the binary headers. */
final class Bytes {
    static final VarHandle LE_LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    static final VarHandle LE_INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private Bytes() {}

    /** A NUL-terminated ASCII string in a fixed field; null if it has no NUL or non-ASCII bytes. */
    static String cString(byte[] b, int off, int len) {
        int end = -1;
        for (int i = off; i < off + len; i++) {
            if (b[i] == 0) {
                end = i;
                break;
            }
            if (b[i] < 0x20 || b[i] > 0x7e) {
                return null;
            }
        }
        return end < 0 ? null : new String(b, off, end - off, StandardCharsets.US_ASCII);
    }

    static void putCString(byte[] b, int off, int len, String s) {
        byte[] a = s.getBytes(StandardCharsets.US_ASCII);
        if (a.length >= len) {
            throw new IllegalArgumentException("'" + s + "' does not fit " + len + " bytes");
        }
        System.arraycopy(a, 0, b, off, a.length);
    }

    /**
     * Text from a header (a JSON string or key, a label, a file name) as it may appear in a
     * one-line message: control characters, backslashes and undecodable bytes (U+FFFD) are
     * escaped, so a hostile header can neither break the line nor fake another one.
     */
    static String printable(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean plain = c >= 0x20 && c != 0x7f && c != '\\' && !(c >= 0x80 && c < 0xa0)
                    && c != '\u2028' && c != '\u2029' && c != '\ufffd';
            if (plain && b == null) {
                continue;
            }
            if (b == null) {
                b = new StringBuilder(s.length() + 16).append(s, 0, i);
            }
            if (plain) {
                b.append(c);
            } else if (c == '\\') {
                b.append("\\\\");
            } else if (c < 0x100) {
                b.append(String.format("\\x%02x", (int) c));
            } else {
                b.append(String.format("\\u%04x", (int) c));
            }
        }
        return b == null ? s : b.toString();
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(Character.forDigit((x >> 4) & 15, 16)).append(Character.forDigit(x & 15, 16));
        }
        return s.toString();
    }
}
