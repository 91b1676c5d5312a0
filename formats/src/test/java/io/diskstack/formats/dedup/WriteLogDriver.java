package io.diskstack.formats.dedup;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.FilterNode;
import io.diskstack.core.NodeOpenContext;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A test filter that records, in one log shared by several nodes, every write, discard and
 * completed flush its child gets ({@code {"driver": "writelog", "log": NAME, "tag": "data",
 * "file": …}}): the order in which a dedup node's two children were written, to rebuild them as a
 * power loss could leave them.
 */
public final class WriteLogDriver implements BlockDriver {
    static final int WRITE = 1;
    static final int DISCARD = 2;
    static final int FLUSH = 3;

    record Op(String tag, int kind, long offset, long length, byte[] data) {}

    private static final Map<String, List<Op>> LOGS = new ConcurrentHashMap<>();

    static List<Op> log(String name) {
        return LOGS.computeIfAbsent(name, k -> Collections.synchronizedList(new ArrayList<>()));
    }

    static void forget(String name) {
        LOGS.remove(name);
    }

    /** A file's non-zero 4 KiB pages, to rebuild it sparsely many times. */
    record Base(long length, Map<Long, byte[]> pages) {
        static Base of(Path file) throws IOException {
            Map<Long, byte[]> pages = new java.util.TreeMap<>();
            byte[] all = Files.readAllBytes(file);
            for (int off = 0; off < all.length; off += 4096) {
                byte[] page = java.util.Arrays.copyOfRange(all, off, Math.min(all.length, off + 4096));
                for (byte x : page) {
                    if (x != 0) {
                        pages.put((long) off, page);
                        break;
                    }
                }
            }
            return new Base(all.length, pages);
        }
    }

    /** Makes target a sparse copy of base, then applies the ops in order. */
    static void replay(Base base, Path target, List<Op> ops) throws IOException {
        Files.deleteIfExists(target);
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(base.length());
            for (Map.Entry<Long, byte[]> e : base.pages().entrySet()) {
                f.seek(e.getKey());
                f.write(e.getValue());
            }
            for (Op op : ops) {
                if (op.kind() == WRITE) {
                    f.seek(op.offset());
                    f.write(op.data(), 0, (int) op.length());
                } else if (op.kind() == DISCARD) {
                    long end = Math.min(op.offset() + op.length(), f.length());
                    for (long p = op.offset(); p < end; p += 1 << 20) {
                        f.seek(p);
                        f.write(new byte[(int) Math.min(1 << 20, end - p)]);
                    }
                }
            }
        }
    }

    @Override
    public String name() {
        return "writelog";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        List<Op> log = log(ctx.options().requireString("log"));
        String tag = ctx.options().requireString("tag");
        return new FilterNode(ctx) {
            @Override
            protected void write(long offset, ByteBuffer src, int flags) throws IOException {
                byte[] b = new byte[src.remaining()];
                src.duplicate().get(b);
                log.add(new Op(tag, WRITE, offset, b.length, b));
                super.write(offset, src, flags);
            }

            @Override
            protected void writeZeroes(long offset, long length, int flags) throws IOException {
                log.add(new Op(tag, DISCARD, offset, length, null));
                super.writeZeroes(offset, length, flags);
            }

            @Override
            protected void discard(long offset, long length) throws IOException {
                log.add(new Op(tag, DISCARD, offset, length, null));
                super.discard(offset, length);
            }

            @Override
            protected void flush() throws IOException {
                filtered().flush();
                log.add(new Op(tag, FLUSH, 0, 0, null));
            }

            @Override
            protected boolean flushesChildren() {
                return true;
            }
        };
    }
}
