package io.diskstack.filters.luks;

import io.diskstack.core.Uninterruptibly;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.FutureTask;
import java.util.concurrent.ThreadFactory;

/**
 * The sector ciphers of one open volume: instances are lent to requests (a cipher is not
 * thread-safe, and building one per request would allocate), and large requests are split
 * so the halves encrypt on two cores at once. Closing wipes every instance and the key copy.
 */
final class CipherPool implements AutoCloseable {
    /** Requests at least this large are split across cores. */
    static final int PARALLEL_THRESHOLD = 128 * 1024;
    private static final int CPUS = Runtime.getRuntime().availableProcessors();
    private static final ExecutorService HELPERS = CPUS < 2 ? null
            : Executors.newFixedThreadPool(CPUS - 1, new ThreadFactory() {
                private int n;

                @Override
                public synchronized Thread newThread(Runnable r) {
                    Thread t = new Thread(r, "luks-crypt-" + n++);
                    t.setDaemon(true);
                    return t;
                }
            });

    private final CipherSpec spec;
    private final byte[] key;
    private final int sectorSize;
    /** Idle instances; an ArrayDeque under the pool's lock allocates nothing per loan. */
    private final ArrayDeque<SectorCipher> idle = new ArrayDeque<>();
    private boolean closed;

    CipherPool(CipherSpec spec, byte[] key, int sectorSize) {
        this.spec = spec;
        this.key = key.clone();
        this.sectorSize = sectorSize;
        release(spec.newCipher(this.key, sectorSize));
    }

    /** A copy of the volume key, for adding key slots; the caller wipes it. */
    byte[] keyCopy() {
        synchronized (idle) {
            if (closed) {
                throw new IllegalStateException("the volume is closed");
            }
            return key.clone();
        }
    }

    int sectorSize() {
        return sectorSize;
    }

    void encrypt(ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int len, long ivSector) {
        run(true, src, srcPos, dst, dstPos, len, ivSector);
    }

    /** Decrypts in place or from src to dst. */
    void decrypt(ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int len, long ivSector) {
        run(false, src, srcPos, dst, dstPos, len, ivSector);
    }

    private void run(boolean encrypt, ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int len, long ivSector) {
        if (HELPERS == null || len < PARALLEL_THRESHOLD) {
            runOne(encrypt, src, srcPos, dst, dstPos, len, ivSector);
            return;
        }
        // Split at a sector boundary; the helper takes the second half. If every helper is
        // busy, this thread runs that half itself once it is done with its own (a FutureTask
        // runs once, whoever gets to it first).
        int first = (len / 2) / sectorSize * sectorSize;
        long ivSecond = ivSector + (long) (first / sectorSize) * (sectorSize / 512);
        FutureTask<Void> second = new FutureTask<>(() -> {
            runOne(encrypt, src, srcPos + first, dst, dstPos + first, len - first, ivSecond);
            return null;
        });
        HELPERS.execute(second);
        try {
            runOne(encrypt, src, srcPos, dst, dstPos, first, ivSector);
        } finally {
            second.run();
            Uninterruptibly.get(second);
        }
    }

    private void runOne(boolean encrypt, ByteBuffer src, int srcPos, ByteBuffer dst, int dstPos, int len, long iv) {
        SectorCipher c = acquire();
        try {
            if (encrypt) {
                c.encrypt(src, srcPos, dst, dstPos, len, iv);
            } else {
                c.decrypt(src, srcPos, dst, dstPos, len, iv);
            }
        } finally {
            release(c);
        }
    }

    private SectorCipher acquire() {
        synchronized (idle) {
            if (closed) {
                throw new IllegalStateException("the volume is closed");
            }
            SectorCipher c = idle.pollFirst();
            // A new instance only when all are on loan: at most one per concurrent request.
            return c != null ? c : spec.newCipher(key, sectorSize);
        }
    }

    private void release(SectorCipher c) {
        synchronized (idle) {
            if (!closed) {
                idle.addFirst(c);
                return;
            }
        }
        c.close();
    }

    @Override
    public void close() {
        synchronized (idle) {
            closed = true;
            for (SectorCipher c : idle) {
                c.close();
            }
            idle.clear();
            Arrays.fill(key, (byte) 0);
        }
    }
}
