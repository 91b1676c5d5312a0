package io.diskstack.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Reading the protocol's big-endian fields and strings off a {@link Transport}. */
public final class Wire {
    private Wire() {}

    /** Reads exactly {@code n} bytes into a new heap buffer, flipped for reading. */
    public static ByteBuffer read(Transport t, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        t.readFully(b);
        return b.flip();
    }

    /** A string of {@code length} bytes from the buffer: UTF-8, or a {@link ProtocolException}. */
    public static String string(ByteBuffer b, int length) throws ProtocolException {
        if (length < 0 || length > b.remaining()) {
            throw new ProtocolException("a string of " + Integer.toUnsignedString(length) + " bytes does not fit in its message");
        }
        ByteBuffer slice = b.slice().limit(length);
        b.position(b.position() + length);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(slice).toString();
        } catch (CharacterCodingException e) {
            throw new ProtocolException("a string is not valid UTF-8");
        }
    }

    public static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Control characters escaped, for messages that show what a peer sent. */
    public static String printable(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length() && i < 256; i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                out.append(String.format("\\x%02x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
