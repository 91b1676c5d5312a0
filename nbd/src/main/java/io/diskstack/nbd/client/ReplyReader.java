package io.diskstack.nbd.client;

import static io.diskstack.nbd.Nbd.*;

import io.diskstack.nbd.Nbd;
import io.diskstack.nbd.ProtocolException;
import io.diskstack.nbd.Transport;
import io.diskstack.nbd.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Parses replies off a connection, one simple reply or structured chunk at a time, into the
 * requests they answer: a read's data goes straight into the requester's buffer. Anything the
 * protocol does not allow is a {@link ProtocolException}.
 */
final class ReplyReader implements ReplyDispatch.ReplySource {
    private static final byte[] ZEROES = new byte[64 << 10];

    private final Transport transport;
    private final ClientNegotiation.Agreed agreed;
    private final String server;

    ReplyReader(ClientNegotiation.Agreed agreed, String server) {
        this.transport = agreed.transport();
        this.agreed = agreed;
        this.server = server;
    }

    @Override
    public void readOne(ReplyDispatch dispatch) throws IOException {
        // a whole simple reply, or a chunk's header but its length: one read, not the magic alone first
        ByteBuffer b = Wire.read(transport, 16);
        int magic = b.getInt();
        if (magic == SIMPLE_REPLY_MAGIC) {
            simpleReply(dispatch, b);
        } else if (magic == STRUCTURED_REPLY_MAGIC && agreed.structured()) {
            structuredChunk(dispatch, b);
        } else {
            throw new ProtocolException(server + " sent a reply with an unknown magic 0x" + Integer.toHexString(magic));
        }
    }

    private void simpleReply(ReplyDispatch dispatch, ByteBuffer b) throws IOException {
        int error = b.getInt();
        long cookie = b.getLong();
        Pending p = dispatch.inFlight(cookie);
        if (agreed.structured() && p.type == CMD_READ) {
            throw new ProtocolException(server + " sent a simple reply to a read after agreeing on structured replies");
        }
        if (error == 0 && p.type == CMD_READ) {
            transport.readFully(p.dst.duplicate().position(p.base).limit(p.base + (int) p.length));
        }
        p.error = error;
        dispatch.complete(cookie);
    }

    private void structuredChunk(ReplyDispatch dispatch, ByteBuffer b) throws IOException {
        int flags = Short.toUnsignedInt(b.getShort());
        int type = Short.toUnsignedInt(b.getShort());
        long cookie = b.getLong();
        long length = Integer.toUnsignedLong(Wire.read(transport, 4).getInt());
        Pending p = dispatch.inFlight(cookie);
        if (length > Nbd.MAX_PAYLOAD + 64L) {
            throw new ProtocolException(server + " sent a reply chunk of " + length + " bytes");
        }
        switch (type) {
            case REPLY_TYPE_NONE -> {
                if (length != 0) {
                    throw new ProtocolException(server + " sent a NONE chunk with a payload");
                }
            }
            case REPLY_TYPE_OFFSET_DATA -> {
                if (p.type != CMD_READ || length < 9) {
                    throw new ProtocolException(server + " sent an unexpected data chunk");
                }
                long at = Wire.read(transport, 8).getLong();
                long n = length - 8;
                checkWithin(p, at, n);
                transport.readFully(p.dst.duplicate().position(p.base + (int) (at - p.offset))
                        .limit(p.base + (int) (at - p.offset + n)));
            }
            case REPLY_TYPE_OFFSET_HOLE -> {
                if (p.type != CMD_READ || length != 12) {
                    throw new ProtocolException(server + " sent an unexpected hole chunk");
                }
                ByteBuffer h = Wire.read(transport, 12);
                long at = h.getLong();
                long n = Integer.toUnsignedLong(h.getInt());
                checkWithin(p, at, n);
                zero(p.dst.duplicate().position(p.base + (int) (at - p.offset)), n);
            }
            case REPLY_TYPE_BLOCK_STATUS -> {
                if (p.type != CMD_BLOCK_STATUS || length < 12 || (length - 4) % 8 != 0) {
                    throw new ProtocolException(server + " sent an unexpected block status chunk");
                }
                ByteBuffer s = Wire.read(transport, (int) length);
                int context = s.getInt();
                long extent = Integer.toUnsignedLong(s.getInt());
                int f = s.getInt();
                if (extent == 0) {
                    throw new ProtocolException(server + " sent an extent of length 0");
                }
                if (context == agreed.allocationContext()) {
                    p.extentLength = extent;
                    p.extentFlags = f;
                    p.gotExtent = true;
                }
            }
            default -> errorChunk(p, type, length);
        }
        if ((flags & REPLY_FLAG_DONE) != 0) {
            dispatch.complete(cookie);
        }
    }

    private void errorChunk(Pending p, int type, long length) throws IOException {
        if ((type & (1 << 15)) == 0) {
            throw new ProtocolException(server + " sent an unknown structured reply type " + type);
        }
        if (length < 6) {
            throw new ProtocolException(server + " sent an error chunk of " + length + " bytes");
        }
        ByteBuffer e = Wire.read(transport, (int) length);
        int error = e.getInt();
        int messageLength = Short.toUnsignedInt(e.getShort());
        if (messageLength > e.remaining()) {
            throw new ProtocolException(server + " sent an error message longer than its chunk");
        }
        String message = Wire.string(e, messageLength);
        p.error = error == 0 ? EINVAL : error;
        p.message = type == REPLY_TYPE_ERROR || type == REPLY_TYPE_ERROR_OFFSET ? message
                : "unknown error chunk type " + type + (message.isEmpty() ? "" : ": " + message);
    }

    private static void zero(ByteBuffer b, long n) {
        while (n > 0) {
            int k = (int) Math.min(n, ZEROES.length);
            b.put(ZEROES, 0, k);
            n -= k;
        }
    }

    private void checkWithin(Pending p, long at, long n) throws ProtocolException {
        if (at < p.offset || n > p.length || at - p.offset > p.length - n) {
            throw new ProtocolException(server + " sent data outside the range it was asked for");
        }
    }
}
