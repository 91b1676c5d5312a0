package io.diskstack.formats.qcow2;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.FilterNode;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A test filter that records every write, write-zeroes, discard and flush sent to the node below
 * ({@code {"driver": "oplog", "log": "name", "file": …}}), so that tests can replay what a power
 * loss could leave on disk: everything before the last completed flush, and any subset of what
 * was written after it. A write is recorded once it is done, a flush where it started: what was
 * written while it ran is not known to be durable.
 */
public final class OpLogDriver implements BlockDriver {
    static final int WRITE = 1;
    static final int ZEROES = 2;
    static final int DISCARD = 3;
    static final int FLUSH = 4;

    /** One operation; {@code data} only for writes. */
    record Op(int kind, long offset, long length, byte[] data) {}

    private static final Map<String, List<Op>> LOGS = new ConcurrentHashMap<>();

    /** The operations recorded under {@code name} so far. */
    static List<Op> log(String name) {
        return LOGS.computeIfAbsent(name, k -> Collections.synchronizedList(new ArrayList<>()));
    }

    static void forget(String name) {
        LOGS.remove(name);
        HOLDS.remove(name);
    }

    /** Flushes through the log {@code name} signal {@code entered}, then wait for {@code release}. */
    record Hold(java.util.concurrent.CountDownLatch entered, java.util.concurrent.CountDownLatch release) {}

    private static final Map<String, Hold> HOLDS = new ConcurrentHashMap<>();

    /** Holds the flushes through log {@code name}, or no longer when {@code hold} is null. */
    static void holdFlushes(String name, Hold hold) {
        if (hold == null) {
            HOLDS.remove(name);
        } else {
            HOLDS.put(name, hold);
        }
    }

    /** Applies one operation to a file, as the disk would have stored it. */
    static void apply(RandomAccessFile f, Op op) throws IOException {
        switch (op.kind()) {
            case WRITE -> {
                f.seek(op.offset());
                f.write(op.data());
            }
            case ZEROES, DISCARD -> {
                long end = op.offset() + op.length();
                if (op.kind() == DISCARD) {
                    end = Math.min(end, f.length());
                }
                for (long p = op.offset(); p < end; p += 1 << 20) {
                    f.seek(p);
                    f.write(new byte[(int) Math.min(1 << 20, end - p)]);
                }
            }
            default -> { }
        }
    }

    /** Copies {@code base} to {@code target} and applies the given operations in order. */
    static void replay(Path base, Path target, List<Op> ops) throws IOException {
        java.nio.file.Files.copy(base, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            for (Op op : ops) {
                apply(f, op);
            }
        }
    }

    @Override
    public String name() {
        return "oplog";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        String name = ctx.options().requireString("log");
        List<Op> log = log(name);
        return new FilterNode(ctx) {
            @Override
            protected void write(long offset, ByteBuffer src, int flags) throws IOException {
                byte[] b = new byte[src.remaining()];
                src.duplicate().get(b);
                super.write(offset, src, flags);
                log.add(new Op(WRITE, offset, b.length, b));
            }

            @Override
            protected void writeZeroes(long offset, long length, int flags) throws IOException {
                super.writeZeroes(offset, length, flags);
                log.add(new Op(ZEROES, offset, length, null));
            }

            @Override
            protected void discard(long offset, long length) throws IOException {
                super.discard(offset, length);
                log.add(new Op(DISCARD, offset, length, null));
            }

            @Override
            protected void flush() throws IOException {
                Hold hold = HOLDS.get(name);
                if (hold != null) {
                    hold.entered().countDown();
                    try {
                        // bounded: a test that never releases still ends
                        hold.release().await(60, java.util.concurrent.TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                // a flush makes durable what was written before it started, no more: with
                // writers running beside it (a sync behind allocations), its mark goes there
                int coversUpTo = log.size();
                filtered().flush();
                log.add(coversUpTo, new Op(FLUSH, 0, 0, null));
            }

            @Override
            protected boolean flushesChildren() {
                return true;
            }
        };
    }
}
