package io.diskstack.core.snapshot;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockChild;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.snapshot.InternalSnapshots.Snapshot;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * Internal snapshots of what a backend shows (QEMU's {@code snapshot-internal}): the walk from
 * its root to the nodes that keep them, and the commands over all those nodes at once.
 *
 * <p>The walk is {@link GraphWalk#landings}: a node that implements {@link InternalSnapshots}
 * takes the snapshot; filters and luks pass it to their data child, an image without snapshots
 * to its primary child (QEMU's fallback), quorum and dedup to every child, each of which must
 * find a target.
 *
 * <p>The commands are all or nothing, and run with every backend over a target drained (no
 * request in flight) and under the graph's monitor (no topology change, no other command):
 * create checks every target first, flushes them before the drain (so that little is left to
 * flush in it), takes the snapshot on all targets at once and deletes the ones it took if one
 * target fails; delete and revert check that every target has the snapshot before changing any.
 */
public final class SnapshotTargets {
    private static final Logger LOG = Logger.getLogger(SnapshotTargets.class.getName());

    /** One node that keeps internal snapshots. */
    public record Target(BlockNode node, InternalSnapshots snapshots) {
        /** {@code 'img0' (c0.qcow2)}, for messages. */
        public String describe() {
            String file = node.filename();
            return "'" + node.nodeName() + "'" + (file == null ? "" : " (" + file + ")");
        }
    }

    private final BlockGraph graph;
    private final BlockBackend backend;

    public SnapshotTargets(BlockGraph graph, BlockBackend backend) {
        this.graph = graph;
        this.backend = backend;
    }

    /** The targets below the backend's root now. */
    public List<Target> targets() {
        return below(backend.rootNode());
    }

    /**
     * The nodes below {@code top} (inclusive) that take an internal snapshot of it, each once,
     * in child order.
     *
     * @throws ConfigException if there is none, or a fan-out child has none
     */
    public static List<Target> below(BlockNode top) {
        List<Target> out = new ArrayList<>();
        for (BlockNode n : GraphWalk.landings(top, node -> node instanceof InternalSnapshots,
                "supports internal snapshots")) {
            out.add(new Target(n, (InternalSnapshots) n));
        }
        return out;
    }

    /** Refuses a name that breaks {@link SnapshotNames}' rule. */
    public static void checkName(String name) {
        String problem = SnapshotNames.problem(name);
        if (problem != null) {
            throw new ConfigException(problem);
        }
    }

    /** The snapshot whose id is {@code idOrName}, else the first named so (QEMU's lookup order). */
    public static Snapshot find(List<Snapshot> snapshots, String idOrName) {
        for (Snapshot s : snapshots) {
            if (s.id().equals(idOrName)) {
                return s;
            }
        }
        for (Snapshot s : snapshots) {
            if (s.name().equals(idOrName)) {
                return s;
            }
        }
        return null;
    }

    /** Takes a snapshot named {@code name} on every target, or on none. */
    public void create(String name) throws IOException {
        checkName(name);
        PhaseTimer timer = new PhaseTimer(LOG, "snapshot-internal '" + printable(name) + "' of '" + backend.name() + "'");
        synchronized (graph) {
            timer.done("wait for other changes");
            List<Target> targets = writableTargets();
            for (Target t : targets) {
                for (Snapshot s : t.snapshots().listSnapshots()) {
                    if (s.name().equals(name) || s.id().equals(name)) {
                        throw new BlockIOException(Errno.EEXIST, "node " + t.describe() + " has a snapshot "
                                + (s.name().equals(name) ? "named" : "with id") + " '" + printable(name) + "' already");
                    }
                }
            }
            timer.done("checks");
            // What the guest wrote so far reaches the disk while it goes on writing; under the
            // drain, only what arrives meanwhile is left to flush.
            backend.flushForCommand();
            timer.done("flush");
            long paused = System.nanoTime();
            try (BlockGraph.Drained ignored = graph.drain(nodes(targets))) {
                timer.done("drain");
                // what nodes above the targets cache (dedup's metadata) belongs in the snapshot
                backend.flushForCommand();
                timer.done("last flush");
                List<AtOnce.Outcome<Snapshot>> made = AtOnce.each(targets, t -> t.snapshots().createSnapshot(name));
                timer.done("snapshot of " + names(targets));
                List<Target> taken = new ArrayList<>();
                List<String> ids = new ArrayList<>();
                for (int i = 0; i < targets.size(); i++) {
                    if (made.get(i).failure() == null) {
                        taken.add(targets.get(i));
                        ids.add(made.get(i).value().id());
                    }
                }
                for (int i = 0; i < targets.size(); i++) {
                    if (made.get(i).failure() != null) {
                        throw takeBack(name, targets.get(i), made.get(i).failure(), taken, ids);
                    }
                }
            }
            timer.total("guest I/O held " + PhaseTimer.millis(System.nanoTime() - paused) + " ms");
            LOG.info(() -> "export '" + backend.name() + "': took snapshot '" + name + "' on " + names(targets));
        }
    }

    /** Deletes the snapshots just taken after {@code failed} failed; the exception to throw. */
    private static IOException takeBack(String name, Target failed, Throwable e, List<Target> taken,
                                        List<String> ids) {
        StringBuilder msg = new StringBuilder("snapshot '" + printable(name) + "' failed on node " + failed.describe()
                + ": " + e.getMessage());
        List<String> undone = new ArrayList<>();
        for (int i = 0; i < taken.size(); i++) {
            Target t = taken.get(i);
            try {
                t.snapshots().deleteSnapshot(ids.get(i));
                undone.add("'" + t.node().nodeName() + "'");
            } catch (IOException | RuntimeException again) {
                msg.append("; could not delete it again from '").append(t.node().nodeName()).append("': ")
                        .append(again.getMessage());
            }
        }
        if (!undone.isEmpty()) {
            msg.append("; deleted it again from ").append(String.join(", ", undone));
        }
        Errno errno = e instanceof ConfigException ? Errno.EINVAL : BlockIOException.errnoOf(e);
        return new BlockIOException(errno, msg.toString(), e);
    }

    /** Deletes the snapshot (by id or name) from every target; changes nothing if one lacks it. */
    public void delete(String idOrName) throws IOException {
        synchronized (graph) {
            List<Target> targets = writableTargets();
            checkPresent(targets, idOrName);
            try (BlockGraph.Drained ignored = graph.drain(nodes(targets))) {
                runOnEach(targets, "delete", idOrName, t -> t.snapshots().deleteSnapshot(idOrName));
            }
            LOG.info(() -> "export '" + backend.name() + "': deleted snapshot '" + idOrName + "' from "
                    + names(targets));
        }
    }

    /**
     * Makes the snapshot (by id or name) the current content of every target; changes nothing if
     * one lacks it or its size is not the disk's (a mounted disk keeps its size).
     */
    public void revert(String idOrName) throws IOException {
        synchronized (graph) {
            List<Target> targets = writableTargets();
            List<Snapshot> found = checkPresent(targets, idOrName);
            for (int i = 0; i < targets.size(); i++) {
                long now = targets.get(i).node().size();
                if (found.get(i).diskSize() != now) {
                    throw new BlockIOException(Errno.EINVAL, "snapshot '" + printable(idOrName) + "' of node "
                            + targets.get(i).describe() + " is " + found.get(i).diskSize() + " bytes but the node is "
                            + now + " bytes now: a mounted disk keeps its size (revert with qemu-img snapshot -a "
                            + "while it is not mounted)");
                }
            }
            try (BlockGraph.Drained ignored = graph.drain(nodes(targets))) {
                backend.flushForCommand();
                try {
                    runOnEach(targets, "revert to", idOrName, t -> t.snapshots().revertToSnapshot(idOrName));
                } finally {
                    // the images changed under the nodes above them (even if only some reverted)
                    backend.invalidateCachesDrained();
                }
            }
            LOG.info(() -> "export '" + backend.name() + "': reverted " + names(targets) + " to snapshot '"
                    + idOrName + "'");
        }
    }

    private interface Step {
        void run(Target t) throws IOException;
    }

    /** Runs the step on each target; a failure names the targets already done (they stay done). */
    private static void runOnEach(List<Target> targets, String what, String idOrName, Step step) throws IOException {
        List<String> done = new ArrayList<>();
        for (Target t : targets) {
            try {
                step.run(t);
                done.add("'" + t.node().nodeName() + "'");
            } catch (IOException | RuntimeException e) {
                Errno errno = e instanceof ConfigException ? Errno.EINVAL : BlockIOException.errnoOf(e);
                throw new BlockIOException(errno, "cannot " + what + " snapshot '" + printable(idOrName)
                        + "' on node " + t.describe() + ": " + e.getMessage()
                        + (done.isEmpty() ? "" : " (done already on " + String.join(", ", done) + ")"), e);
            }
        }
    }

    private List<Target> writableTargets() throws BlockIOException {
        if (!backend.isWritable()) {
            throw new BlockIOException(Errno.EROFS, "export '" + backend.name() + "' is read-only");
        }
        List<Target> targets = targets();
        for (Target t : targets) {
            if (t.node().isReadOnly()) {
                throw new BlockIOException(Errno.EROFS, "node " + t.describe() + " is read-only");
            }
        }
        return targets;
    }

    /** Each target's snapshot with that id or name; ENOENT, naming the targets without it, if one lacks it. */
    private static List<Snapshot> checkPresent(List<Target> targets, String idOrName) throws IOException {
        List<Snapshot> found = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        for (Target t : targets) {
            Snapshot s = find(t.snapshots().listSnapshots(), idOrName);
            found.add(s);
            if (s == null) {
                missing.add("'" + t.node().nodeName() + "'");
            }
        }
        if (missing.size() == targets.size()) {
            throw new BlockIOException(Errno.ENOENT, "no snapshot '" + printable(idOrName) + "' in "
                    + (targets.size() == 1 ? "node " + targets.get(0).describe() : "any of " + names(targets)));
        }
        if (!missing.isEmpty()) {
            throw new BlockIOException(Errno.ENOENT, "snapshot '" + printable(idOrName) + "' is missing from "
                    + String.join(", ", missing) + ": nothing was changed");
        }
        return found;
    }

    private static List<BlockNode> nodes(List<Target> targets) {
        return targets.stream().map(Target::node).collect(Collectors.toList());
    }

    private static String names(List<Target> targets) {
        return targets.stream().map(t -> "'" + t.node().nodeName() + "'").collect(Collectors.joining(", "));
    }

    private static String printable(String name) {
        return SnapshotNames.printable(name);
    }
}
