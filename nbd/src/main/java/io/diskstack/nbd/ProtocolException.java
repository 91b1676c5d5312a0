package io.diskstack.nbd;

import java.io.IOException;

/** The peer broke the protocol: the connection is dropped (a hard disconnect). */
public final class ProtocolException extends IOException {
    public ProtocolException(String message) {
        super(message);
    }
}
