package io.diskstack.nbd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.nbd.Nbd;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The leader/follower reply dispatch against a scripted connection: which thread reads which
 * reply, replies out of order and in several chunks, the reader's role passed on, failures. Every
 * wait has a deadline: a reply that never reaches its requester fails the test as a timeout.
 */
class ReplyDispatchTest {
    private static final Duration DEADLINE = Duration.ofSeconds(20);

    /** One chunk of a reply; the last one completes its request. END: the peer closed. */
    private record Chunk(long cookie, boolean last) {}

    private static final Chunk END = new Chunk(-1, true);

    /** Replies come off a queue, as a socket would deliver them. */
    private static final class ScriptedReplies implements ReplyDispatch.ReplySource {
        final BlockingQueue<Chunk> script = new LinkedBlockingQueue<>();
        /** The thread of each call to readOne as it starts, so that a test can see who reads. */
        final BlockingQueue<Thread> reads = new LinkedBlockingQueue<>();
        /** Per cookie, the threads that read its chunks. */
        final Map<Long, List<Thread>> readBy = new ConcurrentHashMap<>();

        @Override
        public void readOne(ReplyDispatch dispatch) throws IOException {
            reads.add(Thread.currentThread());
            Chunk c;
            try {
                c = script.take();
            } catch (InterruptedException e) {
                throw new InterruptedIOException("interrupted"); // as a channel closes under an interrupt
            }
            if (c == END) {
                throw new EOFException("the peer closed the connection");
            }
            dispatch.inFlight(c.cookie());
            readBy.computeIfAbsent(c.cookie(), k -> new CopyOnWriteArrayList<>()).add(Thread.currentThread());
            if (c.last()) {
                dispatch.complete(c.cookie());
            }
        }

        void reply(long... cookies) {
            for (long c : cookies) {
                script.add(new Chunk(c, true));
            }
        }

        /** The next call to readOne, on whichever thread. */
        Thread nextRead() throws InterruptedException {
            Thread t = reads.poll(DEADLINE.toSeconds(), TimeUnit.SECONDS);
            assertNotNull(t, "nobody read the connection");
            return t;
        }
    }

    /** A request sent from a thread of its own: done when its reply arrived. */
    private record Requester(long cookie, Pending pending, Thread thread, Future<?> done) {}

    private final ScriptedReplies replies = new ScriptedReplies();
    private final AtomicReference<Throwable> readFailure = new AtomicReference<>();
    private final CompletableFuture<Throwable> failed = new CompletableFuture<>();
    private final ReplyDispatch dispatch = new ReplyDispatch(replies, this::readFailed, "test-server");
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "requester");
        t.setDaemon(true);
        return t;
    });

    /** As the connection does: a failed read ends it. */
    private void readFailed(Throwable e) {
        readFailure.compareAndSet(null, e);
        failed.complete(e);
        dispatch.failAll("lost: " + e.getMessage());
    }

    @AfterEach
    void release() {
        dispatch.failAll("test over"); // frees any requester a failed test left waiting
        pool.shutdownNow();
    }

    private static Pending request() {
        return new Pending(Nbd.CMD_READ, 0, 0, null);
    }

    private Requester start(long cookie) throws Exception {
        Pending p = request();
        CompletableFuture<Thread> thread = new CompletableFuture<>();
        Future<?> done = pool.submit(() -> {
            thread.complete(Thread.currentThread());
            dispatch.register(cookie, p);
            dispatch.await(p);
            return null;
        });
        return new Requester(cookie, p, thread.get(DEADLINE.toSeconds(), TimeUnit.SECONDS), done);
    }

    /** Starts a requester and returns once it waits for the reader (it does not read itself). */
    private Requester startFollower(long cookie) throws Exception {
        Requester r = start(cookie);
        while (!(r.thread().getState() == Thread.State.WAITING && inAwaitNotReading(r.thread()))) {
            assertFalse(r.done().isDone(), "the requester returned without a reply");
            Thread.sleep(1);
        }
        return r;
    }

    private static boolean inAwaitNotReading(Thread t) {
        StackTraceElement[] stack = t.getStackTrace();
        return Arrays.stream(stack).anyMatch(f -> f.getMethodName().equals("await")
                && f.getClassName().equals(ReplyDispatch.class.getName()))
                && Arrays.stream(stack).noneMatch(f -> f.getMethodName().equals("readOne"));
    }

    private void assertAnswered(Requester r) throws Exception {
        r.done().get(DEADLINE.toSeconds(), TimeUnit.SECONDS);
        assertTrue(r.pending().done);
        assertNull(r.pending().failure, "request " + r.cookie());
    }

    @Test
    void aRequestAloneReadsItsOwnReplyOnItsOwnThread() {
        assertTimeoutPreemptively(DEADLINE, () -> {
            for (long cookie = 1; cookie <= 3; cookie++) {
                Pending p = request();
                dispatch.register(cookie, p);
                replies.reply(cookie);
                dispatch.await(p);
                assertTrue(p.done);
                assertNull(p.failure);
                assertEquals(List.of(Thread.currentThread()), replies.readBy.get(cookie), "no hand-off to another thread");
            }
        });
    }

    @Test
    void theReaderHandsRepliesThatOvertookItsOwnToTheirRequesters() {
        assertTimeoutPreemptively(DEADLINE, () -> {
            Requester leader = start(1);
            assertSame(leader.thread(), replies.nextRead());
            List<Requester> followers = new ArrayList<>();
            for (long cookie = 2; cookie <= 6; cookie++) {
                followers.add(startFollower(cookie));
            }
            replies.reply(6, 4, 2, 5, 3);
            for (Requester f : followers) {
                assertAnswered(f);
                assertEquals(List.of(leader.thread()), replies.readBy.get(f.cookie()));
            }
            assertFalse(leader.done().isDone(), "the reader waits on for its own reply");
            replies.reply(1);
            assertAnswered(leader);
            assertEquals(List.of(leader.thread()), replies.readBy.get(1L));
        });
        assertNull(readFailure.get());
    }

    @Test
    void whenTheReadersReplyIsDoneTheEarliestWaitingRequesterReadsOnAcrossAChunkedReply() {
        assertTimeoutPreemptively(DEADLINE, () -> {
            Requester first = start(1);
            assertSame(first.thread(), replies.nextRead());
            Requester second = startFollower(2);
            Requester third = startFollower(3);
            replies.script.add(new Chunk(2, false)); // the first chunk of 2's reply
            assertSame(first.thread(), replies.nextRead());
            replies.reply(1);
            assertAnswered(first);
            assertSame(second.thread(), replies.nextRead(), "the role went to the earliest waiting requester");
            replies.reply(3, 2);
            assertAnswered(second);
            assertAnswered(third);
            assertEquals(List.of(first.thread(), second.thread()), replies.readBy.get(2L),
                    "both chunks of 2's reply reached it, read by two readers");
            assertEquals(List.of(second.thread()), replies.readBy.get(3L));
        });
        assertNull(readFailure.get());
    }

    @Test
    void theRoleGoesToARequesterThatWaitsNotToOneStillSending() {
        assertTimeoutPreemptively(DEADLINE, () -> {
            Pending sending = request();
            dispatch.register(1, sending); // registered, but its sender has not reached await yet
            Requester reader = start(2);
            assertSame(reader.thread(), replies.nextRead());
            Requester follower = startFollower(3);
            replies.reply(2);
            assertAnswered(reader);
            assertSame(follower.thread(), replies.nextRead(), "the waiting requester took over reading");
            replies.reply(3);
            assertAnswered(follower);
            replies.reply(1);
            dispatch.await(sending);
            assertNull(sending.failure);
            assertEquals(List.of(Thread.currentThread()), replies.readBy.get(1L), "the late sender found the role free");
        });
    }

    @Test
    void manyRequestersWithRepliesInRandomOrderAndChunksInterleavedEachGetTheirOwn() {
        int threads = 8;
        int perThread = 300;
        BlockingQueue<Long> sent = new LinkedBlockingQueue<>();
        AtomicLong cookies = new AtomicLong();
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            // the server answers what has been sent so far in a random order, some replies in two chunks
            Future<?> server = pool.submit(() -> {
                Random random = new Random(1);
                List<Long> batch = new ArrayList<>();
                while (true) {
                    batch.add(sent.take());
                    sent.drainTo(batch);
                    Collections.shuffle(batch, random);
                    for (long c : batch) {
                        if (c % 3 == 0) {
                            replies.script.add(new Chunk(c, false));
                        }
                    }
                    Collections.shuffle(batch, random);
                    replies.reply(batch.stream().mapToLong(Long::longValue).toArray());
                    batch.clear();
                }
            });
            List<Future<?>> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                workers.add(pool.submit(() -> {
                    for (int i = 0; i < perThread; i++) {
                        long cookie = cookies.incrementAndGet();
                        Pending p = request();
                        dispatch.register(cookie, p);
                        sent.add(cookie);
                        dispatch.await(p);
                        assertTrue(p.done);
                        assertNull(p.failure, "request " + cookie);
                        assertEquals(cookie % 3 == 0 ? 2 : 1, replies.readBy.get(cookie).size(), "request " + cookie);
                    }
                    return null;
                }));
            }
            for (Future<?> w : workers) {
                w.get(); // rethrows a worker's failed assertion
            }
            assertFalse(server.isDone(), "the scripted server stopped early");
        });
        assertEquals(threads * perThread, replies.readBy.size());
        assertNull(readFailure.get());
    }

    @Test
    void aBrokenConnectionFailsEveryRequestWaitingAndEveryLaterOne() {
        List<Requester> requests = new ArrayList<>();
        assertTimeoutPreemptively(DEADLINE, () -> {
            requests.add(start(1));
            replies.nextRead();
            for (long cookie = 2; cookie <= 4; cookie++) {
                requests.add(startFollower(cookie));
            }
            replies.reply(2);
            assertAnswered(requests.get(1));
            replies.script.add(END);
            for (Requester r : requests) {
                r.done().get();
                assertTrue(r.pending().done);
            }
        });
        for (int i : new int[] {0, 2, 3}) {
            assertNotNull(requests.get(i).pending().failure);
            assertEquals("lost: the peer closed the connection", requests.get(i).pending().failure.getMessage());
        }
        ClientConnection.ConnectionLost later = assertThrows(ClientConnection.ConnectionLost.class,
                () -> dispatch.register(5, request()));
        assertEquals("lost: the peer closed the connection", later.getMessage());
    }

    @Test
    void aReaderInterruptedInTheMiddleOfReadingLeavesNobodyWaiting() {
        assertTimeoutPreemptively(DEADLINE, () -> {
            Requester reader = start(1);
            replies.nextRead();
            Requester follower = startFollower(2);
            reader.thread().interrupt(); // the scripted read fails, as a socket channel closes
            reader.done().get();
            follower.done().get();
            assertTrue(readFailure.get() instanceof InterruptedIOException, String.valueOf(readFailure.get()));
            assertEquals("lost: interrupted", reader.pending().failure.getMessage());
            assertEquals("lost: interrupted", follower.pending().failure.getMessage());
        });
    }

    @Test
    void aServerThatGoesAwayWhileNothingIsInFlightIsNoticed() throws Exception {
        dispatch.startWatcher("watcher");
        replies.script.add(END);
        Throwable e = failed.get(DEADLINE.toSeconds(), TimeUnit.SECONDS);
        assertTrue(e instanceof EOFException, String.valueOf(e));
    }

    @Test
    void theWatcherHandsARequestItsReplyWhenItWasReadingFirst() {
        dispatch.startWatcher("watcher");
        assertTimeoutPreemptively(DEADLINE, () -> {
            assertEquals("watcher", replies.nextRead().getName(), "the watcher reads an idle connection");
            Pending p = request();
            dispatch.register(1, p);
            replies.reply(1);
            dispatch.await(p);
            assertNull(p.failure);
            assertEquals("watcher", replies.readBy.get(1L).get(0).getName());
            Pending q = request();
            dispatch.register(2, q);
            replies.reply(2);
            dispatch.await(q);
            assertNull(q.failure);
        });
        assertNull(readFailure.get());
    }
}
