package io.diskstack.filters.luks;

import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ChildRole;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverKind;
import io.diskstack.core.ImageCreateContext;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.objects.Secret;
import java.io.IOException;
import java.util.EnumSet;

/**
 * {@code luks}: a LUKS1 or LUKS2 volume over its {@code file} child, as QEMU's luks driver:
 * <pre>
 * {"driver": "luks", "node-name": "l0", "file": "f0", "key-secret": "s0"}
 * </pre>
 * {@code header} names a node holding a detached header (QEMU 9's option of that name; the
 * payload then starts at the header's payload offset in {@code file}, usually 0).
 *
 * <p>Its nodes stay above the images (snapshots and jobs pass them to their {@code file} child),
 * but that child is not FILTERED: its bytes are ciphertext at other offsets, so walks that treat
 * a FILTERED child as the same data (block status, copy-on-read) stop here.
 */
public final class LuksDriver implements BlockDriver {
    @Override
    public String name() {
        return "luks";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public boolean encrypts() {
        return true;
    }

    /** LUKS1 and LUKS2 start with "LUKS\xba\xbe". */
    @Override
    public int probe(byte[] head) {
        return head.length >= 6 && java.util.Arrays.equals(head, 0, 6, LuksHeader.MAGIC, 0, 6) ? 100 : 0;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        // Described without its key (diskstack info), as QEMU opens it with BDRV_O_NO_IO.
        boolean headerOnly = ctx.inspectOnly() && !ctx.options().has("key-secret");
        Secret secret = headerOnly ? null : ctx.object("key-secret", Secret.class);
        BlockChild data = ctx.openChild("file", EnumSet.of(ChildRole.DATA, ChildRole.METADATA, ChildRole.PRIMARY));
        BlockChild header = ctx.openOptionalChild("header", EnumSet.of(ChildRole.METADATA));
        BlockChild headerSource = header != null ? header : data;
        String file = headerSource.node().filename();
        ImageRef ref = new ImageRef(ctx.owner(), file != null ? file : headerSource.node().nodeName());
        HeaderDevice dev = HeaderDevice.of(headerSource);
        LuksHeader h = LuksHeader.read(dev, ref);
        if (header == null && h.payloadOffset() < h.metadataSize()) {
            // With the header on the data device, the data must start after all of it: else
            // writes to the volume would overwrite the header or the key slots.
            throw ref.error(h.version() == 1 ? "LUKS1 'payload-offset'" : "LUKS2 segment 'offset'", h.payloadOffset()
                    + " lies inside the header and key slot area (which ends at " + h.metadataSize()
                    + "); only a detached header ('header' option) allows that");
        }
        long dataSize = data.size();
        if (h.payloadOffset() > dataSize) {
            throw ref.error(h.version() == 1 ? "LUKS1 'payload-offset'" : "LUKS2 segment 'offset'", h.payloadOffset()
                    + " is past the end of the data (" + dataSize + " bytes)");
        }
        if (h.fixedSize() >= 0 && (h.fixedSize() > dataSize - h.payloadOffset() || h.fixedSize() % h.sectorSize() != 0)) {
            throw ref.error("LUKS2 segment 'size'", h.fixedSize() + " does not fit the data (" + dataSize + " bytes)");
        }
        if (headerOnly) {
            return new LuksHeaderNode(ctx, data, h);
        }
        byte[] pass = secret.bytes();
        byte[] key = null;
        try {
            KeySlots.Unlock u = KeySlots.open(h, dev, pass, ref);
            key = u.key();
            if (key == null) {
                throw new ConfigException(ctx.owner() + ": " + Bytes.printable(u.failure(secret.id())));
            }
            return new LuksNode(ctx, data, header, h, key);
        } finally {
            LuksNode.wipe(pass);
            LuksNode.wipe(key);
        }
    }

    @Override
    public void create(ImageCreateContext ctx) throws IOException {
        try {
            LuksFormatter.create(ctx);
        } catch (IllegalStateException e) {
            throw new ConfigException("luks image '" + ctx.file() + "': " + e.getMessage());
        }
    }
}
