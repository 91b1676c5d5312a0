package io.diskstack.nbd.client;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.Condition;

/**
 * One request waiting for its reply. The thread that reads the reply fills in the outcome and
 * marks it done under {@link ReplyDispatch}'s lock; the requesting thread reads the outcome after.
 */
final class Pending {
    final int type;
    final long offset;
    final long length;
    /** Where a read's data goes: the caller's buffer, from its position. */
    final ByteBuffer dst;
    final int base;
    /** Signalled when the reply is done, or when the requester may take over reading. */
    Condition wake;
    /** The requester sleeps on {@link #wake}: it may be handed the reader's role. */
    boolean awaiting;
    /** A block status reply's first extent: length and flags. */
    long extentLength;
    int extentFlags;
    boolean gotExtent;
    int error;
    String message;
    IOException failure;
    volatile boolean done;

    Pending(int type, long offset, long length, ByteBuffer dst) {
        this.type = type;
        this.offset = offset;
        this.length = length;
        this.dst = dst;
        this.base = dst == null ? 0 : dst.position();
    }
}
