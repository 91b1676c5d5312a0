package io.diskstack.filters.blkdebug;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.FilterNode;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.filters.blkdebug.InjectionRule.Action;
import io.diskstack.filters.blkdebug.InjectionRule.IoType;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.List;

/** Fault injection for tests: errors, delays and corrupted reads, by rule. */
final class BlkdebugNode extends FilterNode {
    private final List<InjectionRule> rules;
    private final int align;

    BlkdebugNode(NodeOpenContext ctx, List<InjectionRule> rules, int align) throws IOException {
        super(ctx);
        this.rules = rules;
        this.align = align;
    }

    @Override
    public int requestAlignment() {
        return align;
    }

    @Override
    public String details() {
        return rules.size() + " rule" + (rules.size() == 1 ? "" : "s") + (align > 1 ? ", align " + align : "");
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        int start = dst.position();
        long length = dst.remaining();
        boolean corrupt = apply(IoType.READ, offset, length);
        super.read(offset, dst, flags);
        if (corrupt) {
            corrupt(dst, start, offset, length);
        }
    }

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        apply(IoType.WRITE, offset, src.remaining());
        super.write(offset, src, flags);
    }

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        apply(IoType.WRITE_ZEROES, offset, length);
        super.writeZeroes(offset, length, flags);
    }

    @Override
    protected void discard(long offset, long length) throws IOException {
        apply(IoType.DISCARD, offset, length);
        super.discard(offset, length);
    }

    @Override
    protected void flush() throws IOException {
        apply(IoType.FLUSH, 0, 0);
    }

    @Override
    protected BlockStatus blockStatus(long offset, long length) throws IOException {
        apply(IoType.BLOCK_STATUS, offset, length);
        return super.blockStatus(offset, length);
    }

    /** Runs the matching rules: delays, then errors; returns true if read data must be corrupted. */
    private boolean apply(IoType type, long offset, long length) throws IOException {
        boolean corrupt = false;
        for (InjectionRule r : rules) {
            if (!r.fires(type, offset, length)) {
                continue;
            }
            switch (r.action) {
                case DELAY -> sleep(r.delayMillis);
                case ERROR -> throw new BlockIOException(r.errno, "blkdebug '" + nodeName() + "': injected "
                        + r.errno + " on " + type.name().toLowerCase(java.util.Locale.ROOT) + " at " + offset);
                case CORRUPT -> corrupt = true;
            }
        }
        return corrupt;
    }

    /** Inverts the bytes of the request that fall inside any corrupting rule's range. */
    private void corrupt(ByteBuffer dst, int start, long offset, long length) {
        for (InjectionRule r : rules) {
            if (r.action != Action.CORRUPT) {
                continue;
            }
            long from = Math.max(offset, r.offset);
            long to = Math.min(offset + length, r.offset + Math.min(r.length, Long.MAX_VALUE - r.offset));
            for (long p = from; p < to; p++) {
                int i = start + (int) (p - offset);
                dst.put(i, (byte) ~dst.get(i));
            }
        }
    }

    private static void sleep(long millis) throws InterruptedIOException {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("blkdebug delay interrupted");
        }
    }
}
