package io.diskstack.filters.blkdebug;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.FilterNode;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.filters.blkdebug.InjectionRule.IoType;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
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
        List<InjectionRule> corrupting = apply(IoType.READ, offset, length);
        super.read(offset, dst, flags);
        if (!corrupting.isEmpty()) {
            corrupt(dst, start, offset, length, corrupting);
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

    /**
     * Runs each rule that fires on this request, in order: delays, errors (the first ends the
     * request); returns the corrupting rules that fired, whose ranges the read data loses.
     */
    private List<InjectionRule> apply(IoType type, long offset, long length) throws IOException {
        List<InjectionRule> corrupting = List.of();
        for (InjectionRule r : rules) {
            if (!r.fires(type, offset, length)) {
                continue;
            }
            switch (r.action) {
                case DELAY -> sleep(r.delayMillis);
                case ERROR -> throw new BlockIOException(r.errno, "blkdebug '" + nodeName() + "': injected "
                        + r.errno + " on " + type.name().toLowerCase(java.util.Locale.ROOT) + " at " + offset);
                case CORRUPT -> {
                    if (corrupting.isEmpty()) {
                        corrupting = new ArrayList<>();
                    }
                    corrupting.add(r);
                }
            }
        }
        return corrupting;
    }

    /**
     * Inverts the bytes of the request inside the ranges of the rules that fired, each byte once
     * even where the ranges overlap.
     */
    private static void corrupt(ByteBuffer dst, int start, long offset, long length, List<InjectionRule> fired) {
        List<long[]> ranges = new ArrayList<>();
        for (InjectionRule r : fired) {
            long from = Math.max(offset, r.offset);
            long to = Math.min(offset + length, r.offset + Math.min(r.length, Long.MAX_VALUE - r.offset));
            if (from < to) {
                ranges.add(new long[] {from, to});
            }
        }
        ranges.sort(Comparator.comparingLong(range -> range[0]));
        long done = offset;
        for (long[] range : ranges) {
            for (long p = Math.max(range[0], done); p < range[1]; p++) {
                int i = start + (int) (p - offset);
                dst.put(i, (byte) ~dst.get(i));
            }
            done = Math.max(done, range[1]);
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
