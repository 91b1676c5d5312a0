package io.diskstack.core.testing;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.DriverKind;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A test-only image format with QEMU's defaults and nothing else: {@code {"driver": "image",
 * "file": …}} shows its file's bytes, like raw, but keeps the default permissions of a format
 * (it shares no write on its file), so tests can put two "formats" over one file.
 */
public final class ImageFormatDriver implements BlockDriver {
    @Override
    public String name() {
        return "image";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FORMAT;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        BlockChild file = ctx.openChild("file", ChildRole.image());
        return new BlockNode(ctx) {
            @Override
            public long size() {
                return file.size();
            }

            @Override
            protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
                file.read(offset, dst);
            }

            @Override
            protected void write(long offset, ByteBuffer src, int flags) throws IOException {
                file.write(offset, src, flags);
            }
        };
    }
}
