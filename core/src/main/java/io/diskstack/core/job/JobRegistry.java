package io.diskstack.core.job;

import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.Errno;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The jobs of one mount, by id. A job whose id is taken by a job still running, or that works on a
 * node another running job works on, is refused (EBUSY). A finished job stays listed until the
 * next job with its id starts, so its status and error can be read.
 */
public final class JobRegistry {
    private final Map<String, BlockJob> jobs = new LinkedHashMap<>();
    private volatile int generation;

    /** Starts the job on its own thread. */
    public synchronized void start(BlockJob job) throws BlockIOException {
        checkFree(job.id(), job.nodes());
        jobs.remove(job.id());
        jobs.put(job.id(), job);
        generation++;
        job.start(() -> {
            synchronized (JobRegistry.this) {
                generation++;
            }
        });
    }

    /**
     * Refuses (EBUSY) a new job with this id, or on these nodes, while another job runs: call it
     * before making anything for the new job, and again (through {@link #start}) to start it.
     */
    public synchronized void checkFree(String id, List<BlockNode> nodes) throws BlockIOException {
        BlockJob same = jobs.get(id);
        if (same != null && !same.status().isFinished()) {
            throw new BlockIOException(Errno.EBUSY, "job '" + id + "' is " + same.status().qemuName()
                    + " already");
        }
        for (BlockJob other : jobs.values()) {
            if (other.status().isFinished()) {
                continue;
            }
            for (BlockNode n : nodes) {
                if (other.nodes().contains(n)) {
                    throw new BlockIOException(Errno.EBUSY, "job '" + id + "': node '" + n.nodeName()
                            + "' is in use by job '" + other.id() + "' (" + other.type() + ")");
                }
            }
        }
    }

    /** True if a running job works on the node: graph changes must wait for it. */
    public synchronized BlockJob runningOn(BlockNode node) {
        for (BlockJob j : jobs.values()) {
            if (!j.status().isFinished() && j.nodes().contains(node)) {
                return j;
            }
        }
        return null;
    }

    public synchronized BlockJob get(String id) {
        return jobs.get(id);
    }

    public synchronized List<BlockJob> list() {
        return new ArrayList<>(jobs.values());
    }

    /** Changes when a job starts or ends: the control tree shows the jobs. */
    public int generation() {
        return generation;
    }

    /** Cancels every job and waits for them: the mount is stopping; the graph stays as before each. */
    public void stopAll() {
        for (BlockJob j : list()) {
            j.stop();
        }
    }
}
