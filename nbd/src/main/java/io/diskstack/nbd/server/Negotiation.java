package io.diskstack.nbd.server;

import static io.diskstack.nbd.Nbd.*;

import io.diskstack.nbd.Nbd;
import io.diskstack.nbd.ProtocolException;
import io.diskstack.nbd.TlsCreds;
import io.diskstack.nbd.Transport;
import io.diskstack.nbd.Wire;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The server's side of fixed newstyle negotiation, up to the transmission phase: options
 * EXPORT_NAME, ABORT, LIST, STARTTLS, INFO, GO, STRUCTURED_REPLY, LIST_META_CONTEXT and
 * SET_META_CONTEXT ({@code base:allocation}). With TLS credentials the server runs in FORCEDTLS
 * mode: every option but STARTTLS and ABORT gets NBD_REP_ERR_TLS_REQD until TLS is up.
 */
final class Negotiation {
    /** What a successful negotiation agreed on. */
    record Agreed(Transport transport, NbdExport export, int transmissionFlags, boolean structured,
                  boolean baseAllocation) {}

    /** The longest option we read; a longer one is a denial of service, and the connection is dropped. */
    private static final int MAX_OPTION = 64 << 10;
    /** Options a client may send before choosing an export. */
    private static final int MAX_OPTIONS = 256;
    static final int BASE_ALLOCATION_ID = 1;

    private final NbdServer server;
    private Transport transport;
    private boolean noZeroes;
    private boolean structured;
    /** The export name base:allocation was selected for, or null. */
    private String metaExport;

    Negotiation(NbdServer server, Transport transport) {
        this.server = server;
        this.transport = transport;
    }

    /** Negotiates; null if the client ended the session (ABORT) before choosing an export. */
    Agreed run() throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(18).putLong(NBDMAGIC).putLong(IHAVEOPT)
                .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip();
        transport.write(hello);
        int clientFlags = Wire.read(transport, 4).getInt();
        if ((clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) != 0) {
            throw new ProtocolException("the client sent unknown flags " + Integer.toHexString(clientFlags));
        }
        noZeroes = (clientFlags & FLAG_C_NO_ZEROES) != 0;
        for (int count = 0; count < MAX_OPTIONS; count++) {
            ByteBuffer head = Wire.read(transport, 16);
            if (head.getLong() != IHAVEOPT) {
                throw new ProtocolException("an option without the IHAVEOPT magic");
            }
            int option = head.getInt();
            int length = head.getInt();
            if (length < 0 || length > MAX_OPTION) {
                throw new ProtocolException("an option of " + Integer.toUnsignedString(length) + " bytes");
            }
            ByteBuffer data = Wire.read(transport, length);
            TlsCreds tls = server.tlsCreds();
            if (tls != null && !transport.isTls() && option != OPT_STARTTLS && option != OPT_ABORT) {
                if (option == OPT_EXPORT_NAME) {
                    throw new ProtocolException("the client chose an export before starting TLS");
                }
                reply(option, REP_ERR_TLS_REQD, "this server requires TLS (use NBD_OPT_STARTTLS)");
                continue;
            }
            switch (option) {
                case OPT_EXPORT_NAME -> {
                    Agreed a = exportName(data);
                    if (a != null) {
                        return a;
                    }
                }
                case OPT_ABORT -> {
                    reply(option, REP_ACK, null);
                    return null;
                }
                case OPT_LIST -> list(data);
                case OPT_STARTTLS -> startTls(data, tls);
                case OPT_INFO, OPT_GO -> {
                    Agreed a = infoOrGo(option, data);
                    if (a != null) {
                        return a;
                    }
                }
                case OPT_STRUCTURED_REPLY -> {
                    if (data.hasRemaining()) {
                        reply(option, REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
                    } else {
                        structured = true;
                        reply(option, REP_ACK, null);
                    }
                }
                case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> metaContext(option, data);
                default -> reply(option, REP_ERR_UNSUP, "option " + option + " is not supported");
            }
        }
        throw new ProtocolException("more than " + MAX_OPTIONS + " options without choosing an export");
    }

    private Agreed exportName(ByteBuffer data) throws IOException {
        String name = Wire.string(data, data.remaining());
        NbdExport export = server.export(name);
        if (export == null) {
            throw new ProtocolException("NBD_OPT_EXPORT_NAME for unknown export '" + Wire.printable(name) + "'");
        }
        int flags = transmissionFlags(export);
        ByteBuffer out = ByteBuffer.allocate(noZeroes ? 10 : 134).putLong(export.backend().size()).putShort((short) flags);
        transport.write(out.position(out.limit()).flip());
        return new Agreed(transport, export, flags, structured, name.equals(metaExport));
    }

    private void list(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            reply(OPT_LIST, REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
            return;
        }
        for (NbdExport e : server.exports()) {
            byte[] name = Wire.utf8(e.name());
            byte[] description = Wire.utf8(e.description() == null ? "" : e.description());
            ByteBuffer b = ByteBuffer.allocate(4 + name.length + description.length)
                    .putInt(name.length).put(name).put(description).flip();
            replyRaw(OPT_LIST, REP_SERVER, b);
        }
        reply(OPT_LIST, REP_ACK, null);
    }

    private void startTls(ByteBuffer data, TlsCreds tls) throws IOException {
        if (tls == null) {
            reply(OPT_STARTTLS, REP_ERR_POLICY, "this server has no TLS credentials");
        } else if (transport.isTls()) {
            reply(OPT_STARTTLS, REP_ERR_INVALID, "TLS is already running");
        } else if (data.hasRemaining()) {
            reply(OPT_STARTTLS, REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
        } else {
            reply(OPT_STARTTLS, REP_ACK, null);
            transport = transport.startTls(tls, null);
            structured = false; // the spec: nothing negotiated before STARTTLS survives it
            metaExport = null;
        }
    }

    private Agreed infoOrGo(int option, ByteBuffer data) throws IOException {
        if (data.remaining() < 6) {
            reply(option, REP_ERR_INVALID, "option data too short");
            return null;
        }
        int nameLength = data.getInt();
        if (nameLength < 0 || nameLength > data.remaining() - 2) {
            reply(option, REP_ERR_INVALID, "the export name does not fit in the option");
            return null;
        }
        String name;
        try {
            name = Wire.string(data, nameLength);
        } catch (ProtocolException e) {
            reply(option, REP_ERR_INVALID, e.getMessage());
            return null;
        }
        int requests = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != requests * 2) {
            reply(option, REP_ERR_INVALID, "the information requests do not match the option length");
            return null;
        }
        List<Integer> asked = new ArrayList<>();
        for (int i = 0; i < requests; i++) {
            asked.add(Short.toUnsignedInt(data.getShort()));
        }
        NbdExport export = server.export(name);
        if (export == null) {
            reply(option, REP_ERR_UNKNOWN, "no export named '" + Wire.printable(name) + "'");
            return null;
        }
        int flags = transmissionFlags(export);
        replyRaw(option, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT)
                .putLong(export.backend().size()).putShort((short) flags).flip());
        if (asked.contains(INFO_NAME)) {
            byte[] n = Wire.utf8(export.name());
            replyRaw(option, REP_INFO, ByteBuffer.allocate(2 + n.length).putShort((short) INFO_NAME).put(n).flip());
        }
        if (asked.contains(INFO_DESCRIPTION) && export.description() != null) {
            byte[] d = Wire.utf8(export.description());
            replyRaw(option, REP_INFO, ByteBuffer.allocate(2 + d.length).putShort((short) INFO_DESCRIPTION).put(d).flip());
        }
        if (asked.contains(INFO_BLOCK_SIZE)) {
            replyRaw(option, REP_INFO, ByteBuffer.allocate(14).putShort((short) INFO_BLOCK_SIZE)
                    .putInt(1).putInt(preferredBlockSize(export)).putInt(Nbd.MAX_PAYLOAD).flip());
        }
        reply(option, REP_ACK, null);
        if (option == OPT_INFO) {
            return null;
        }
        return new Agreed(transport, export, flags, structured, name.equals(metaExport));
    }

    private void metaContext(int option, ByteBuffer data) throws IOException {
        if (!structured) {
            reply(option, REP_ERR_INVALID, "negotiate structured replies first");
            return;
        }
        boolean set = option == OPT_SET_META_CONTEXT;
        if (set) {
            metaExport = null; // replaced even when this one fails
        }
        String name;
        List<String> queries = new ArrayList<>();
        try {
            if (data.remaining() < 8) {
                throw new ProtocolException("option data too short");
            }
            name = Wire.string(data, data.getInt());
            if (data.remaining() < 4) {
                throw new ProtocolException("option data too short");
            }
            int count = data.getInt();
            for (int i = 0; i < count; i++) {
                if (data.remaining() < 4) {
                    throw new ProtocolException("query " + i + " does not fit in the option");
                }
                int length = data.getInt();
                if (length > Nbd.MAX_STRING) {
                    throw new ProtocolException("query " + i + " is longer than " + Nbd.MAX_STRING + " bytes");
                }
                queries.add(Wire.string(data, length));
            }
            if (data.hasRemaining()) {
                throw new ProtocolException("data after the last query");
            }
        } catch (ProtocolException e) {
            reply(option, REP_ERR_INVALID, e.getMessage());
            return;
        }
        if (server.export(name) == null) {
            reply(option, REP_ERR_UNKNOWN, "no export named '" + Wire.printable(name) + "'");
            return;
        }
        boolean match = set ? queries.contains(BASE_ALLOCATION)
                : queries.isEmpty() || queries.contains("base:") || queries.contains(BASE_ALLOCATION);
        if (match) {
            byte[] context = Wire.utf8(BASE_ALLOCATION);
            replyRaw(option, REP_META_CONTEXT, ByteBuffer.allocate(4 + context.length)
                    .putInt(set ? BASE_ALLOCATION_ID : 0).put(context).flip());
            if (set) {
                metaExport = name;
            }
        }
        reply(option, REP_ACK, null);
    }

    private int transmissionFlags(NbdExport export) {
        // Multi-conn is safe: every connection writes through the same backend into the same
        // graph, which keeps no per-connection cache, and a flush flushes that whole graph.
        int flags = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_CAN_MULTI_CONN;
        if (export.backend().isWritable()) {
            flags |= FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES | FLAG_SEND_FAST_ZERO;
        } else {
            flags |= FLAG_READ_ONLY;
        }
        if (structured) {
            flags |= FLAG_SEND_DF; // every read is answered in one data chunk anyway
        }
        return flags;
    }

    /** The size below which requests to the export need read-modify-write somewhere in the graph. */
    static int preferredBlockSize(NbdExport export) {
        int alignment = Math.max(4096, export.backend().rootNode().requestAlignment());
        return Math.min(Integer.highestOneBit(alignment), Nbd.MAX_PAYLOAD);
    }

    private void reply(int option, int type, String message) throws IOException {
        ByteBuffer payload = message == null ? ByteBuffer.allocate(0) : ByteBuffer.wrap(Wire.utf8(message));
        replyRaw(option, type, payload);
    }

    private void replyRaw(int option, int type, ByteBuffer payload) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(20).putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type)
                .putInt(payload.remaining()).flip();
        transport.write(head, payload);
    }
}
