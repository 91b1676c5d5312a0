package io.diskstack.fuse;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.Errno;
import io.diskstack.core.ExportGuard;
import java.io.IOException;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * How many open file handles each disk has: the mount's {@link ExportGuard}, so that a command
 * that changes a disk's content under its users (snapshot revert) can refuse while anyone has it
 * open, and keep it closed while it runs: an open during the command waits for it.
 */
final class OpenDisks implements ExportGuard {
    /** close(2) reaches us as an asynchronous release: give it this long before calling a disk busy. */
    private static final long RELEASE_GRACE_MILLIS = 1000;

    private final Map<String, Integer> open = new HashMap<>();
    private final Set<String> held = new HashSet<>();

    /** A handle on the disk opens; waits while a command holds the disk closed. */
    synchronized void opened(String disk) {
        boolean interrupted = false;
        while (held.contains(disk)) {
            try {
                wait();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        open.merge(disk, 1, Integer::sum);
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    synchronized void released(String disk) {
        open.computeIfPresent(disk, (k, n) -> n <= 1 ? null : n - 1);
        notifyAll();
    }

    /**
     * Runs the action while nobody has any of the disks open and nobody can open them; EBUSY if
     * a handle stays open for the grace period.
     */
    @Override
    public void whileClosed(Collection<String> disks, String why, Action action) throws IOException {
        synchronized (this) {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RELEASE_GRACE_MILLIS);
            long left;
            while (busy(disks) != null && (left = deadline - System.nanoTime()) > 0) {
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            String disk = busy(disks);
            if (disk != null) {
                int n = open.getOrDefault(disk, 0);
                throw new BlockIOException(Errno.EBUSY, n == 0 ? "another command holds disk '" + disk + "'"
                        : "disk '" + disk + "' is open (" + n + (n == 1 ? " handle" : " handles")
                        + "): close it first, " + why);
            }
            for (String d : disks) {
                held.add(d);
            }
        }
        try {
            action.run();
        } finally {
            synchronized (this) {
                for (String d : disks) {
                    held.remove(d);
                }
                notifyAll();
            }
        }
    }

    /** One of the disks that is open or held, or null. */
    private String busy(Collection<String> disks) {
        for (String d : disks) {
            if (open.containsKey(d) || held.contains(d)) {
                return d;
            }
        }
        return null;
    }
}
