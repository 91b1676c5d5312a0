package io.diskstack.nbd;

import io.diskstack.core.Errno;

/** The protocol's numbers (doc/proto.md of the NBD project), shared by the server and the client. */
public final class Nbd {
    private Nbd() {}

    public static final long NBDMAGIC = 0x4e42444d41474943L;
    public static final long IHAVEOPT = 0x49484156454F5054L;
    public static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;
    public static final int REQUEST_MAGIC = 0x25609513;
    public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

    // handshake and client flags
    public static final int FLAG_FIXED_NEWSTYLE = 1;
    public static final int FLAG_NO_ZEROES = 2;
    public static final int FLAG_C_FIXED_NEWSTYLE = 1;
    public static final int FLAG_C_NO_ZEROES = 2;

    // transmission flags
    public static final int FLAG_HAS_FLAGS = 1;
    public static final int FLAG_READ_ONLY = 1 << 1;
    public static final int FLAG_SEND_FLUSH = 1 << 2;
    public static final int FLAG_SEND_FUA = 1 << 3;
    public static final int FLAG_SEND_TRIM = 1 << 5;
    public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
    public static final int FLAG_SEND_DF = 1 << 7;
    public static final int FLAG_CAN_MULTI_CONN = 1 << 8;
    public static final int FLAG_SEND_FAST_ZERO = 1 << 11;

    // options
    public static final int OPT_EXPORT_NAME = 1;
    public static final int OPT_ABORT = 2;
    public static final int OPT_LIST = 3;
    public static final int OPT_STARTTLS = 5;
    public static final int OPT_INFO = 6;
    public static final int OPT_GO = 7;
    public static final int OPT_STRUCTURED_REPLY = 8;
    public static final int OPT_LIST_META_CONTEXT = 9;
    public static final int OPT_SET_META_CONTEXT = 10;

    // option replies
    public static final int REP_ACK = 1;
    public static final int REP_SERVER = 2;
    public static final int REP_INFO = 3;
    public static final int REP_META_CONTEXT = 4;
    public static final int REP_ERR_UNSUP = 0x80000001;
    public static final int REP_ERR_POLICY = 0x80000002;
    public static final int REP_ERR_INVALID = 0x80000003;
    public static final int REP_ERR_PLATFORM = 0x80000004;
    public static final int REP_ERR_TLS_REQD = 0x80000005;
    public static final int REP_ERR_UNKNOWN = 0x80000006;
    public static final int REP_ERR_SHUTDOWN = 0x80000007;
    public static final int REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
    public static final int REP_ERR_TOO_BIG = 0x80000009;

    // NBD_INFO types
    public static final int INFO_EXPORT = 0;
    public static final int INFO_NAME = 1;
    public static final int INFO_DESCRIPTION = 2;
    public static final int INFO_BLOCK_SIZE = 3;

    // commands and their flags
    public static final int CMD_READ = 0;
    public static final int CMD_WRITE = 1;
    public static final int CMD_DISC = 2;
    public static final int CMD_FLUSH = 3;
    public static final int CMD_TRIM = 4;
    public static final int CMD_CACHE = 5;
    public static final int CMD_WRITE_ZEROES = 6;
    public static final int CMD_BLOCK_STATUS = 7;
    public static final int CMD_FLAG_FUA = 1;
    public static final int CMD_FLAG_NO_HOLE = 1 << 1;
    public static final int CMD_FLAG_DF = 1 << 2;
    public static final int CMD_FLAG_REQ_ONE = 1 << 3;
    public static final int CMD_FLAG_FAST_ZERO = 1 << 4;

    // structured replies
    public static final int REPLY_FLAG_DONE = 1;
    public static final int REPLY_TYPE_NONE = 0;
    public static final int REPLY_TYPE_OFFSET_DATA = 1;
    public static final int REPLY_TYPE_OFFSET_HOLE = 2;
    public static final int REPLY_TYPE_BLOCK_STATUS = 5;
    public static final int REPLY_TYPE_ERROR = (1 << 15) + 1;
    public static final int REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

    /** The one metadata context served and used: allocation, from block status. */
    public static final String BASE_ALLOCATION = "base:allocation";
    public static final int STATE_HOLE = 1;
    public static final int STATE_ZERO = 2;

    // error values
    public static final int EPERM = 1;
    public static final int EIO = 5;
    public static final int ENOMEM = 12;
    public static final int EINVAL = 22;
    public static final int ENOSPC = 28;
    public static final int EOVERFLOW = 75;
    public static final int ENOTSUP = 95;
    public static final int ESHUTDOWN = 108;

    /** The longest string (export name, description, message) the protocol allows. */
    public static final int MAX_STRING = 4096;
    /** The largest read or write payload the server accepts and the client sends (the spec's 32 MiB). */
    public static final int MAX_PAYLOAD = 32 << 20;
    /** The default port, IANA's. */
    public static final int DEFAULT_PORT = 10809;

    /** The protocol's error value for an errno of ours (the spec's short list). */
    public static int errorOf(Errno errno) {
        return switch (errno) {
            case EPERM, EROFS, EACCES -> EPERM;
            case ENOMEM -> ENOMEM;
            case EINVAL, ERANGE -> EINVAL;
            case ENOSPC, EFBIG -> ENOSPC;
            case ENOTSUP -> ENOTSUP;
            default -> EIO;
        };
    }

    /** Our errno for an error value a server sent; unknown values count as EINVAL, as the spec says. */
    public static Errno errnoOf(int error) {
        return switch (error) {
            case EPERM -> Errno.EPERM;
            case EIO -> Errno.EIO;
            case ENOMEM -> Errno.ENOMEM;
            case ENOSPC -> Errno.ENOSPC;
            case ENOTSUP -> Errno.ENOTSUP;
            case ESHUTDOWN -> Errno.EIO;
            default -> Errno.EINVAL;
        };
    }

    /** A name for an option reply error, for messages. */
    public static String replyName(int reply) {
        return switch (reply) {
            case REP_ERR_UNSUP -> "unsupported";
            case REP_ERR_POLICY -> "refused by policy";
            case REP_ERR_INVALID -> "invalid";
            case REP_ERR_PLATFORM -> "not supported on the server's platform";
            case REP_ERR_TLS_REQD -> "TLS required";
            case REP_ERR_UNKNOWN -> "unknown export";
            case REP_ERR_SHUTDOWN -> "server shutting down";
            case REP_ERR_BLOCK_SIZE_REQD -> "block size required";
            case REP_ERR_TOO_BIG -> "too big";
            default -> "error " + Integer.toUnsignedString(reply);
        };
    }
}
