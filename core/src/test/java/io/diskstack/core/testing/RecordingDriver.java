package io.diskstack.core.testing;

import io.diskstack.core.BlockDriver;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverKind;
import io.diskstack.core.FilterNode;
import io.diskstack.core.NodeOpenContext;
import io.diskstack.core.RequestFlags;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A test-only filter that records what reaches it: {@code {"driver": "recorder", "file": …,
 * "fua": false}} ({@code fua=false}: it claims no FUA support, so the core must emulate FUA).
 * Every node of one driver instance (one per {@link BlockGraph}, see {@link #of}) appends to
 * one log, in order, as {@code "NODE OP"}: {@code read}, {@code write}, {@code write+fua},
 * {@code zeroes}, {@code zeroes+fua}, {@code discard}, {@code flush}, {@code drain-begin},
 * {@code drain-end}, {@code close}.
 *
 * <p>A node can also {@linkplain Recorder#hold hold} the requests of one kind until the test
 * lets them go, for tests that need a request caught in flight.
 */
public final class RecordingDriver implements BlockDriver {
    private final List<String> log = new CopyOnWriteArrayList<>();

    /** The recorder of a graph opened with the drivers on the class path. */
    public static RecordingDriver of(BlockGraph graph) {
        return (RecordingDriver) graph.drivers().get("recorder", "test");
    }

    /** The recording node {@code name} of a graph. */
    public static Recorder node(BlockGraph graph, String name) {
        return (Recorder) graph.node(name);
    }

    /** Everything recorded so far, in order. */
    public List<String> events() {
        return List.copyOf(log);
    }

    /** How many times {@code event} ({@code "NODE OP"}) was recorded. */
    public long count(String event) {
        return log.stream().filter(event::equals).count();
    }

    public void clear() {
        log.clear();
    }

    @Override
    public String name() {
        return "recorder";
    }

    @Override
    public DriverKind kind() {
        return DriverKind.FILTER;
    }

    @Override
    public BlockNode open(NodeOpenContext ctx) throws IOException {
        boolean fua = ctx.options().optBool("fua", true);
        return new Recorder(ctx, fua);
    }

    /** A request of one kind caught at a node: the test waits for it to arrive, then lets it go. */
    public static final class Hold {
        private final CountDownLatch entered = new CountDownLatch(1);
        private final CountDownLatch released = new CountDownLatch(1);

        /** Waits (up to 30 s) until a request has arrived and is held. */
        public void awaitHeld() throws InterruptedException {
            if (!entered.await(30, TimeUnit.SECONDS)) {
                throw new AssertionError("no request arrived to be held");
            }
        }

        /** Lets the held requests, and any later ones, go. */
        public void release() {
            released.countDown();
        }

        private void pass() throws IOException {
            entered.countDown();
            try {
                released.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while held");
            }
        }
    }

    public final class Recorder extends FilterNode {
        private final boolean fua;
        private final Map<String, Hold> holds = new ConcurrentHashMap<>();

        private Recorder(NodeOpenContext ctx, boolean fua) throws IOException {
            super(ctx);
            this.fua = fua;
        }

        /** Holds every request of kind {@code op} ({@code read}, {@code write}, …) from now until released. */
        public Hold hold(String op) {
            Hold h = new Hold();
            holds.put(op, h);
            return h;
        }

        private void record(String op) throws IOException {
            log.add(nodeName() + " " + op);
            Hold h = holds.get(op);
            if (h != null) {
                h.pass();
            }
        }

        @Override
        public boolean supportsFua() {
            return fua && super.supportsFua();
        }

        @Override
        protected void read(long offset, ByteBuffer dst, int flags) throws IOException {
            record("read");
            super.read(offset, dst, flags);
        }

        @Override
        protected void write(long offset, ByteBuffer src, int flags) throws IOException {
            record("write" + fuaSuffix(flags));
            super.write(offset, src, flags);
        }

        @Override
        protected void writeZeroes(long offset, long length, int flags) throws IOException {
            record("zeroes" + fuaSuffix(flags));
            super.writeZeroes(offset, length, flags);
        }

        @Override
        protected void discard(long offset, long length) throws IOException {
            record("discard");
            super.discard(offset, length);
        }

        @Override
        protected void flush() throws IOException {
            record("flush");
            super.flush();
        }

        @Override
        protected void drainBegin() {
            log.add(nodeName() + " drain-begin");
        }

        @Override
        protected void drainEnd() {
            log.add(nodeName() + " drain-end");
        }

        @Override
        protected void close() {
            log.add(nodeName() + " close");
        }

        private static String fuaSuffix(int flags) {
            return RequestFlags.has(flags, RequestFlags.FUA) ? "+fua" : "";
        }
    }
}
