package io.diskstack.formats.qcow2;

import com.github.luben.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Decompresses one compressed cluster (spec: compression_type 0 = raw deflate without zlib
 * header, 1 = zstd). Decompression stops once a whole cluster is produced, since the stored
 * bytes may run on into the next compressed cluster.
 */
final class Compression {
    static final int DEFLATE = 0;
    static final int ZSTD = 1;

    private Compression() {}

    /** Fills {@code out} (one cluster) from {@code in}; false if the data is not a valid stream. */
    static boolean decompress(int type, byte[] in, int inLength, byte[] out) {
        return type == ZSTD ? zstd(in, inLength, out) : deflate(in, inLength, out);
    }

    private static boolean deflate(byte[] in, int inLength, byte[] out) {
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in, 0, inLength);
            int done = 0;
            while (done < out.length) {
                int n = inflater.inflate(out, done, out.length - done);
                if (n == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
                    break;
                }
                done += n;
            }
            return done == out.length;
        } catch (DataFormatException e) {
            return false;
        } finally {
            inflater.end();
        }
    }

    private static boolean zstd(byte[] in, int inLength, byte[] out) {
        try (ZstdInputStream z = new ZstdInputStream(new ByteArrayInputStream(in, 0, inLength))) {
            int done = 0;
            while (done < out.length) {
                int n = z.read(out, done, out.length - done);
                if (n <= 0) {
                    break;
                }
                done += n;
            }
            return done == out.length;
        } catch (IOException | RuntimeException | UnsatisfiedLinkError e) {
            return false;
        }
    }
}
