package io.diskstack.filters.throttle;

import io.diskstack.core.FilterNode;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A throttle filter: asks its group before each request, then forwards it. Write-zeroes and
 * discard count as writes of their whole length, as in QEMU's throttle filter. As there, a
 * request waits only while the buckets overflow, never for its own size, so a 1 GiB discard
 * goes at once and the requests after it wait {@code (1 GiB - bucket) / bps} in all.
 */
final class ThrottleNode extends FilterNode {
    private final ThrottleGroup group;
    private final ThrottleGroup.Member member;

    ThrottleNode(NodeOpenContext ctx, ThrottleGroup group) throws IOException {
        super(ctx);
        this.group = group;
        this.member = group.join(ctx.nodeName());
    }

    @Override
    protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
        group.intercept(member, false, dst.remaining());
        super.read(offset, dst, flags);
    }

    @Override
    protected void write(long offset, ByteBuffer src, int flags) throws IOException {
        group.intercept(member, true, src.remaining());
        super.write(offset, src, flags);
    }

    @Override
    protected void writeZeroes(long offset, long length, int flags) throws IOException {
        group.intercept(member, true, length);
        super.writeZeroes(offset, length, flags);
    }

    @Override
    protected void discard(long offset, long length) throws IOException {
        group.intercept(member, true, length);
        super.discard(offset, length);
    }

    @Override
    protected void drainBegin() {
        group.drainBegin(member);
    }

    @Override
    protected void drainEnd() {
        group.drainEnd(member);
    }

    @Override
    protected void close() {
        group.leave(member);
    }

    @Override
    public String details() {
        return "group " + group.id();
    }

    @Override
    public Map<String, Long> stats() {
        long[] s = group.memberStats(member);
        Map<String, Long> stats = new LinkedHashMap<>();
        stats.put("throttled-requests", s[0]);
        stats.put("throttled-wait-ms", s[1]);
        stats.put("throttled-now", s[2]);
        return stats;
    }
}
