package io.diskstack.filters.luks;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockChild;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/** Where a LUKS header lives: a child edge of an open node, or an image file being created or edited. */
interface HeaderDevice {
    long size() throws IOException;

    /** Fills dst from its position to its limit. */
    void read(long offset, ByteBuffer dst) throws IOException;

    void write(long offset, ByteBuffer src) throws IOException;

    /** Makes what was written durable before anything written later. */
    void flush() throws IOException;

    default byte[] readBytes(long offset, int length) throws IOException {
        byte[] b = new byte[length];
        read(offset, ByteBuffer.wrap(b));
        return b;
    }

    default void writeBytes(long offset, byte[] data) throws IOException {
        write(offset, ByteBuffer.wrap(data));
    }

    static HeaderDevice of(BlockChild child) {
        return new HeaderDevice() {
            @Override
            public long size() {
                return child.size();
            }

            @Override
            public void read(long offset, ByteBuffer dst) throws IOException {
                child.read(offset, dst);
            }

            @Override
            public void write(long offset, ByteBuffer src) throws IOException {
                child.write(offset, src);
            }

            @Override
            public void flush() throws IOException {
                child.flush();
            }
        };
    }

    /** An image opened on its own for a key-slot edit (its file node holds the image lock). */
    static HeaderDevice of(BlockBackend backend) {
        return new HeaderDevice() {
            @Override
            public long size() {
                return backend.size();
            }

            @Override
            public void read(long offset, ByteBuffer dst) throws IOException {
                backend.read(offset, dst);
            }

            @Override
            public void write(long offset, ByteBuffer src) throws IOException {
                backend.write(offset, src, 0);
            }

            @Override
            public void flush() throws IOException {
                backend.flush();
            }
        };
    }

    static HeaderDevice of(FileChannel ch) {
        return new HeaderDevice() {
            @Override
            public long size() throws IOException {
                return ch.size();
            }

            @Override
            public void read(long offset, ByteBuffer dst) throws IOException {
                while (dst.hasRemaining()) {
                    int n = ch.read(dst, offset);
                    if (n < 0) {
                        throw new EOFException("end of file at " + offset);
                    }
                    offset += n;
                }
            }

            @Override
            public void write(long offset, ByteBuffer src) throws IOException {
                while (src.hasRemaining()) {
                    offset += ch.write(src, offset);
                }
            }

            @Override
            public void flush() throws IOException {
                ch.force(true);
            }
        };
    }
}
