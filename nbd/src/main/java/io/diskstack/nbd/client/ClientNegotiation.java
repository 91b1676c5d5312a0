package io.diskstack.nbd.client;

import static io.diskstack.nbd.Nbd.*;

import io.diskstack.nbd.Nbd;
import io.diskstack.nbd.ProtocolException;
import io.diskstack.nbd.TlsCreds;
import io.diskstack.nbd.Transport;
import io.diskstack.nbd.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The client's side of fixed newstyle negotiation: optional STARTTLS, STRUCTURED_REPLY,
 * SET_META_CONTEXT {@code base:allocation}, then GO with a block size request. Anything a
 * server sends that the protocol does not allow ends it with a {@link ProtocolException}.
 */
final class ClientNegotiation {
    /** What the server offered for the export. */
    record Agreed(Transport transport, long size, int flags, boolean structured, int allocationContext,
                  int minBlock, int maxPayload) {}

    private static final int MAX_REPLY = 64 << 10;

    private Transport transport;
    private final String server;

    private ClientNegotiation(Transport transport, String server) {
        this.transport = transport;
        this.server = server;
    }

    /**
     * @param tls credentials to start TLS with, or null
     * @param tlsHostname the name the server's certificate must carry (null: not checked)
     */
    static Agreed run(Transport transport, String server, String export, TlsCreds tls, String tlsHostname)
            throws IOException {
        return new ClientNegotiation(transport, server).negotiate(export, tls, tlsHostname);
    }

    private Agreed negotiate(String export, TlsCreds tls, String tlsHostname) throws IOException {
        ByteBuffer hello = Wire.read(transport, 18);
        long magic = hello.getLong();
        long second = hello.getLong();
        if (magic != NBDMAGIC) {
            throw new ProtocolException(server + " is not an NBD server (no NBDMAGIC)");
        }
        if (second != IHAVEOPT) {
            throw new ProtocolException(server + " speaks oldstyle NBD, which is not supported");
        }
        int handshake = Short.toUnsignedInt(hello.getShort());
        if ((handshake & FLAG_FIXED_NEWSTYLE) == 0) {
            throw new ProtocolException(server + " does not offer fixed newstyle negotiation");
        }
        int clientFlags = FLAG_C_FIXED_NEWSTYLE | (handshake & FLAG_NO_ZEROES) ;
        transport.write(ByteBuffer.allocate(4).putInt(clientFlags).flip());
        if (tls != null) {
            Reply r = option(OPT_STARTTLS, ByteBuffer.allocate(0));
            if (r.type != REP_ACK) {
                throw new ProtocolException(server + " refused TLS: " + r.describe());
            }
            try {
                transport = transport.startTls(tls, tlsHostname);
            } catch (ProtocolException e) {
                throw new ProtocolException(server + ": " + e.getMessage());
            }
        }
        Reply sr = option(OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
        boolean structured = sr.type == REP_ACK;
        if (!structured && sr.type == REP_ERR_TLS_REQD) {
            throw new ProtocolException(server + " requires TLS: give tls-creds");
        }
        byte[] name = Wire.utf8(export);
        int allocation = -1;
        if (structured) {
            byte[] query = Wire.utf8(BASE_ALLOCATION);
            ByteBuffer data = ByteBuffer.allocate(4 + name.length + 4 + 4 + query.length)
                    .putInt(name.length).put(name).putInt(1).putInt(query.length).put(query).flip();
            sendOption(OPT_SET_META_CONTEXT, data);
            while (true) {
                Reply r = reply(OPT_SET_META_CONTEXT);
                if (r.type == REP_META_CONTEXT) {
                    if (r.data.remaining() < 4) {
                        throw new ProtocolException(server + " sent a short metadata context reply");
                    }
                    int id = r.data.getInt();
                    if (Wire.string(r.data, r.data.remaining()).equals(BASE_ALLOCATION)) {
                        allocation = id;
                    }
                } else {
                    break; // ACK, or an error: block status is then not used
                }
            }
        }
        ByteBuffer go = ByteBuffer.allocate(4 + name.length + 2 + 2).putInt(name.length).put(name)
                .putShort((short) 1).putShort((short) INFO_BLOCK_SIZE).flip();
        sendOption(OPT_GO, go);
        long size = -1;
        int flags = 0;
        int minBlock = 1;
        int maxPayload = Nbd.MAX_PAYLOAD;
        while (true) {
            Reply r = reply(OPT_GO);
            if (r.type == REP_ACK) {
                break;
            }
            if (r.type != REP_INFO) {
                if (r.type == REP_ERR_UNKNOWN) {
                    throw new ProtocolException(server + " has no export '" + Wire.printable(export) + "'"
                            + r.message());
                }
                if (r.type == REP_ERR_TLS_REQD) {
                    throw new ProtocolException(server + " requires TLS: give tls-creds");
                }
                throw new ProtocolException(server + " refused export '" + Wire.printable(export) + "': " + r.describe());
            }
            if (r.data.remaining() < 2) {
                throw new ProtocolException(server + " sent an empty NBD_REP_INFO");
            }
            int info = Short.toUnsignedInt(r.data.getShort());
            if (info == INFO_EXPORT) {
                if (r.data.remaining() != 10) {
                    throw new ProtocolException(server + " sent an NBD_INFO_EXPORT of the wrong length");
                }
                size = r.data.getLong();
                flags = Short.toUnsignedInt(r.data.getShort());
            } else if (info == INFO_BLOCK_SIZE) {
                if (r.data.remaining() != 12) {
                    throw new ProtocolException(server + " sent an NBD_INFO_BLOCK_SIZE of the wrong length");
                }
                minBlock = r.data.getInt();
                r.data.getInt();
                maxPayload = r.data.getInt();
                if (minBlock < 1 || minBlock > 65536 || Integer.bitCount(minBlock) != 1 || maxPayload < minBlock) {
                    throw new ProtocolException(server + " sent impossible block sizes");
                }
                maxPayload = Math.min(Integer.toUnsignedLong(maxPayload) > Nbd.MAX_PAYLOAD ? Nbd.MAX_PAYLOAD : maxPayload,
                        Nbd.MAX_PAYLOAD);
                maxPayload -= maxPayload % minBlock;
            }
        }
        if (size < 0) {
            throw new ProtocolException(server + " accepted export '" + Wire.printable(export) + "' without its size");
        }
        return new Agreed(transport, size, flags, structured, allocation, minBlock, maxPayload);
    }

    private record Reply(int type, ByteBuffer data) {
        String message() {
            if (!data.hasRemaining()) {
                return "";
            }
            try {
                return ": " + Wire.printable(Wire.string(data.duplicate(), data.remaining()));
            } catch (ProtocolException e) {
                return "";
            }
        }

        String describe() {
            return Nbd.replyName(type) + message();
        }
    }

    private Reply option(int option, ByteBuffer data) throws IOException {
        sendOption(option, data);
        return reply(option);
    }

    private void sendOption(int option, ByteBuffer data) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(option).putInt(data.remaining()).flip();
        transport.write(head, data);
    }

    private Reply reply(int option) throws IOException {
        ByteBuffer head = Wire.read(transport, 20);
        if (head.getLong() != OPTION_REPLY_MAGIC) {
            throw new ProtocolException(server + " sent an option reply without its magic");
        }
        int forOption = head.getInt();
        int type = head.getInt();
        int length = head.getInt();
        if (forOption != option) {
            throw new ProtocolException(server + " answered option " + forOption + " to option " + option);
        }
        if (length < 0 || length > MAX_REPLY) {
            throw new ProtocolException(server + " sent an option reply of " + Integer.toUnsignedString(length) + " bytes");
        }
        return new Reply(type, Wire.read(transport, length));
    }
}
