package io.diskstack.formats.raw;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverKind;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.formats.file.FileDriver;
import java.io.IOException;

/** The {@code raw} format with QEMU's {@code offset} and {@code size} options. */
public final class RawDriver implements BlockDriver {
    @Override
    public String name() {
        return "raw";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FORMAT;
    }

    /** Any file is raw, as a last resort (QEMU's raw probe). */
    @Override
    public int probe(byte[] head) {
        return 1;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        NodeOptions o = ctx.options();
        long offset = o.optSize("offset", 0);
        boolean sizeGiven = o.has("size");
        long size = o.optSize("size", -1);
        BlockChild file = ctx.openChild("file", ChildRole.image());
        long fileSize = file.size();
        if (offset > fileSize) {
            throw o.error("offset", "value " + offset + " is past the end of the file (" + fileSize + " bytes)");
        }
        if (!sizeGiven) {
            size = fileSize - offset;
        } else if (size % 512 != 0) {
            throw o.error("size", "value " + size + " is not a multiple of 512");
        } else if (size > fileSize - offset) {
            throw o.error("size", "offset + size (" + (offset + size) + ") is past the end of the file ("
                    + fileSize + " bytes)");
        }
        return new RawNode(ctx, file, offset, size);
    }

    @Override
    public void create(ImageCreateContext ctx) throws IOException {
        if (ctx.size() < 0) {
            throw new ConfigException("create '" + ctx.file() + "' (raw): a size is required");
        }
        String prealloc = ctx.options().optString("preallocation", "off");
        FileDriver.Preallocation mode = switch (prealloc) {
            case "off" -> null;
            case "falloc" -> FileDriver.Preallocation.FALLOC;
            case "full" -> FileDriver.Preallocation.FULL;
            default -> throw ctx.options().error("preallocation", "value '" + prealloc
                    + "' is not one of off, falloc, full");
        };
        FileDriver.createSparseFile(ctx.file(), mode == null ? ctx.size() : 0);
        if (mode != null) {
            try {
                FileDriver.preallocate(ctx.file(), 0, ctx.size(), mode, ctx.progress());
            } catch (IOException | RuntimeException e) {
                java.nio.file.Files.deleteIfExists(ctx.file());
                throw e;
            }
        }
    }
}
