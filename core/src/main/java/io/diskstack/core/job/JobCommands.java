package io.diskstack.core.job;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.BlockNode;
import io.diskstack.core.ConfigException;
import io.diskstack.core.Errno;
import io.diskstack.core.GraphWalk;
import io.diskstack.core.config.ExternalSnapshotRecord;
import io.diskstack.core.config.Stack;
import io.diskstack.core.options.NodeOptions;
import io.diskstack.core.options.Sizes;
import io.diskstack.core.snapshot.ExternalSnapshots;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The job commands of a mount, as a front end writes them (one line of {@code key=value} words,
 * separated by spaces or commas, QEMU's option names): commit, stream and backup of a disk,
 * mirror of a node, and the controls of a running job. Every command is checked in full before
 * anything is made; a refused one changes nothing and says why in one line naming the job, the
 * node and the option.
 */
public final class JobCommands {
    private final Stack stack;
    private final JobRegistry jobs;
    private final JobClock clock;

    public JobCommands(Stack stack, JobRegistry jobs, JobClock clock) {
        this.stack = stack;
        this.jobs = jobs;
        this.clock = clock;
    }

    public JobRegistry jobs() {
        return jobs;
    }

    /**
     * {@code commit}: {@code NAME} (an external snapshot: what was written since it merges into
     * the images it froze, and its overlays leave) or {@code top=NODE base=NODE}, with
     * {@code speed}, {@code job-id}, {@code delete=on} (delete the overlays' files) and
     * {@code pivot=off} (stay ready until {@code complete}).
     */
    public BlockJob commit(String export, String text) throws IOException {
        synchronized (stack) {
            Map<String, Object> words = words(text, "name");
            String id = jobId(words, "commit-" + export);
            NodeOptions o = options(id, words);
            String name = o.optString("name", null);
            String topName = o.optString("top", null);
            String baseName = o.optString("base", null);
            long speed = speed(o);
            boolean delete = o.optBool("delete", false);
            boolean pivot = o.optBool("pivot", true);
            o.assertAllConsumed();
            BlockBackend disk = writableDisk(id, export);
            ConfigRecord.require(stack, id);
            List<CommitJob.Chain> chains = new ArrayList<>();
            if (name != null) {
                if (topName != null || baseName != null) {
                    throw invalid(id, "give a snapshot name or top= and base=, not both");
                }
                for (BlockNode overlay : overlays(id, export, name)) {
                    if (overlay.cowChild() == null) {
                        throw invalid(id, "overlay '" + overlay.nodeName() + "' of snapshot '" + name
                                + "' has no backing file any more (it was streamed)");
                    }
                    chains.add(new CommitJob.Chain(activeTop(id, disk, overlay), overlay.cowChild().node(), null));
                }
            } else {
                if (topName == null || baseName == null) {
                    throw invalid(id, "give the name of an external snapshot, or top=NODE and base=NODE");
                }
                BlockNode top = node(id, "top", topName);
                BlockNode base = node(id, "base", baseName);
                if (!GraphWalk.isBelowInChain(top, base)) {
                    throw invalid(id, "'base' node '" + baseName + "' is not below 'top' node '" + topName
                            + "' in its backing chain");
                }
                if (!BlockGraph.reaches(disk.rootNode(), top)) {
                    throw invalid(id, "'top' node '" + topName + "' is not below export '" + export + "'");
                }
                chains.add(new CommitJob.Chain(top, base, ExternalSnapshots.snapshotPoints(disk.rootNode())
                        .contains(top) ? null : overlayAbove(id, top)));
            }
            ConfigRecord record = new ConfigRecord(stack);
            CommitJob job = new CommitJob(id, graph(), chains, clock, speed, record, delete, pivot);
            jobs.checkFree(id, job.nodes());
            record.check(job::recordPivot);
            job.prepare();
            return start(job);
        }
    }

    /**
     * {@code stream}: {@code NAME} (the overlays of that external snapshot pull in every block
     * they get from below and stop naming a backing file), with {@code base=NODE} to stop above
     * that node instead, {@code speed}, {@code job-id}.
     */
    public BlockJob stream(String export, String text) throws IOException {
        synchronized (stack) {
            Map<String, Object> words = words(text, "name");
            String id = jobId(words, "stream-" + export);
            NodeOptions o = options(id, words);
            String name = o.optString("name", null);
            String baseName = o.optString("base", null);
            long speed = speed(o);
            o.assertAllConsumed();
            if (name == null) {
                throw invalid(id, "give the name of an external snapshot");
            }
            writableDisk(id, export);
            ConfigRecord.require(stack, id);
            BlockNode base = baseName == null ? null : node(id, "base", baseName);
            List<StreamJob.Chain> chains = new ArrayList<>();
            for (BlockNode overlay : overlays(id, export, name)) {
                if (base != null && !GraphWalk.isBelowInChain(overlay, base)) {
                    throw invalid(id, "'base' node '" + baseName + "' is not below overlay '" + overlay.nodeName()
                            + "' in its backing chain");
                }
                if (overlay.cowChild() == null) {
                    throw invalid(id, "overlay '" + overlay.nodeName() + "' has no backing file: nothing to stream");
                }
                chains.add(new StreamJob.Chain(overlay, base));
            }
            ConfigRecord record = new ConfigRecord(stack);
            StreamJob job = new StreamJob(id, graph(), chains, clock, speed, record);
            jobs.checkFree(id, job.nodes());
            record.check(job::recordPivot);
            job.prepare();
            return start(job);
        }
    }

    /**
     * {@code mirror} of a node: {@code target=PATH format=FORMAT}, with {@code node-name} (the new
     * node's; default NODE-mirror), {@code speed}, {@code job-id}, {@code pivot=off}.
     */
    public BlockJob mirror(String nodeName, String text) throws IOException {
        synchronized (stack) {
            Map<String, Object> words = words(text, "target");
            String id = jobId(words, "mirror-" + nodeName);
            NodeOptions o = options(id, words);
            Path target = path(o);
            String formatName = o.requireString("format");
            String newName = o.optString("node-name", null);
            long speed = speed(o);
            boolean pivot = o.optBool("pivot", true);
            o.assertAllConsumed();
            BlockNode source = node(id, "node", nodeName);
            if (nodeName.startsWith("#")) {
                throw invalid(id, "node '" + nodeName + "' has no node-name of its own: give it one to mirror it");
            }
            for (BlockBackend b : graph().backends()) {
                if (!b.isWritable() && BlockGraph.reaches(b.rootNode(), source) && source.isReadOnly()) {
                    throw new BlockIOException(Errno.EROFS, "job '" + id + "': node '" + nodeName + "' is read-only");
                }
            }
            ConfigRecord.require(stack, id);
            var format = TargetImage.format(graph(), id, formatName);
            TargetImage.checkPath(id, target);
            String targetName = newName != null ? newName : mirrorName(nodeName);
            if (!BlockGraph.isValidName(targetName) || graph().node(targetName) != null) {
                throw invalid(id, "'node-name' '" + targetName + "' is not a free node-name");
            }
            jobs.checkFree(id, List.of(source));
            ConfigRecord record = new ConfigRecord(stack);
            TargetImage image = TargetImage.create(graph(), id, target, format, null, source.size(), targetName);
            MirrorJob job;
            try {
                job = new MirrorJob(id, graph(), source, image, clock, speed, record, pivot);
                record.check(job::recordPivot);
                job.prepare();
            } catch (IOException | RuntimeException e) {
                image.discard();
                throw e;
            }
            return start(job);
        }
    }

    /**
     * {@code backup} of a disk: {@code target=PATH format=FORMAT}, with {@code encrypt=SECRET-ID}
     * (an encrypted image under that secret), {@code speed}, {@code job-id}.
     */
    public BlockJob backup(String export, String text) throws IOException {
        synchronized (stack) {
            Map<String, Object> words = words(text, "target");
            String id = jobId(words, "backup-" + export);
            NodeOptions o = options(id, words);
            Path target = path(o);
            String formatName = o.requireString("format");
            String encrypt = o.optString("encrypt", null);
            long speed = speed(o);
            o.assertAllConsumed();
            BlockBackend disk = disk(id, export);
            var format = TargetImage.format(graph(), id, formatName);
            TargetImage.checkPath(id, target);
            jobs.checkFree(id, List.of(disk.rootNode()));
            String targetName = ExternalSnapshots.boundedName(graph(), id + "-target", Set.of());
            TargetImage image;
            try {
                image = TargetImage.create(graph(), id, target, format, encrypt, disk.size(), targetName);
            } catch (ConfigException e) {
                throw new BlockIOException(e.errno(), "job '" + id + "': " + e.getMessage(), e);
            }
            BackupJob job = new BackupJob(id, graph(), disk, image, clock, speed);
            try {
                job.prepare();
            } catch (RuntimeException e) {
                image.discard();
                throw e;
            }
            return start(job);
        }
    }

    /** {@code jobs/ID/action}: {@code pause}, {@code resume}, {@code cancel} or {@code complete}. */
    public void action(String id, String text) throws IOException {
        BlockJob job = job(id);
        switch (text.trim()) {
            case "pause" -> job.pause();
            case "resume" -> job.resume();
            case "cancel" -> job.cancel();
            case "complete" -> job.complete();
            default -> throw new BlockIOException(Errno.EINVAL, "job '" + id + "': action '" + text.trim()
                    + "' is not one of pause, resume, cancel, complete");
        }
    }

    /** {@code jobs/ID/speed}: bytes per second (sizes like {@code 10M} work), 0 for no limit. */
    public void speed(String id, String text) throws IOException {
        BlockJob job = job(id);
        job.setSpeed(parseSpeed(id, text.trim()));
    }

    private BlockJob job(String id) throws BlockIOException {
        BlockJob job = jobs.get(id);
        if (job == null) {
            throw new BlockIOException(Errno.ENOENT, "no job '" + id + "'");
        }
        return job;
    }

    private BlockJob start(BlockJob job) throws BlockIOException {
        try {
            jobs.start(job);
        } catch (BlockIOException e) {
            job.undo();
            throw e;
        }
        return job;
    }

    // ---- parsing and checks ----

    /**
     * The words of a command: {@code key=value} pairs, separated by spaces or commas; a word
     * without '=' is the value of {@code implied} (a snapshot name, a target).
     */
    static Map<String, Object> words(String text, String implied) throws BlockIOException {
        Map<String, Object> out = new LinkedHashMap<>();
        for (String w : text.trim().split("[\\s,]+")) {
            if (w.isEmpty()) {
                continue;
            }
            int eq = w.indexOf('=');
            String key = eq < 0 ? implied : w.substring(0, eq);
            String value = eq < 0 ? w : w.substring(eq + 1);
            if (out.put(key, value) != null) {
                throw new BlockIOException(Errno.EINVAL, "'" + key + "' is given twice");
            }
        }
        return out;
    }

    private static String jobId(Map<String, Object> words, String fallback) throws BlockIOException {
        Object id = words.remove("job-id");
        String s = id == null ? fallback : id.toString();
        if (!BlockGraph.isValidName(s)) {
            throw new BlockIOException(Errno.EINVAL, "'job-id' '" + s + "' must start with a letter and use only "
                    + "letters, digits, '-', '.' and '_' (at most 31)");
        }
        return s;
    }

    private static NodeOptions options(String id, Map<String, Object> words) {
        return new NodeOptions("job '" + id + "'", words);
    }

    private static long speed(NodeOptions o) throws BlockIOException {
        String s = o.optString("speed", "0");
        return parseSpeed(o.owner().replaceFirst("^job '(.*)'$", "$1"), s);
    }

    private static long parseSpeed(String id, String s) throws BlockIOException {
        try {
            long v = Sizes.parse(s);
            if (v < 0) {
                throw new IllegalArgumentException();
            }
            return v;
        } catch (RuntimeException e) {
            throw new BlockIOException(Errno.EINVAL, "job '" + id + "': 'speed' value '" + s
                    + "' is not a number of bytes per second");
        }
    }

    private Path path(NodeOptions o) {
        return graph().baseDir().resolve(o.requireString("target")).normalize();
    }

    private BlockGraph graph() {
        return stack.graph();
    }

    private BlockBackend disk(String id, String export) throws BlockIOException {
        BlockBackend b = graph().backend(export);
        if (b == null) {
            throw new BlockIOException(Errno.ENOENT, "job '" + id + "': no export '" + export + "'");
        }
        return b;
    }

    private BlockBackend writableDisk(String id, String export) throws BlockIOException {
        BlockBackend b = disk(id, export);
        if (!b.isWritable()) {
            throw new BlockIOException(Errno.EROFS, "job '" + id + "': export '" + export + "' is read-only");
        }
        return b;
    }

    private BlockNode node(String id, String key, String name) throws BlockIOException {
        BlockNode n = graph().node(name);
        if (n == null) {
            throw new BlockIOException(Errno.ENOENT, "job '" + id + "': '" + key + "' names no node '" + name + "'");
        }
        return n;
    }

    /** The overlays external snapshot {@code name} of the export put in place. */
    private List<BlockNode> overlays(String id, String export, String name) throws BlockIOException {
        for (ExternalSnapshotRecord r : stack.externalSnapshots()) {
            if (r.export().equals(export) && r.name().equals(name)) {
                List<BlockNode> out = new ArrayList<>();
                for (String n : r.overlays()) {
                    out.add(node(id, "name", n));
                }
                return out;
            }
        }
        throw new BlockIOException(Errno.ENOENT, "job '" + id + "': export '" + export
                + "' has no external snapshot '" + name + "'");
    }

    /** The image the disk uses now on the chain that holds {@code overlay}: an active commit's top. */
    private static BlockNode activeTop(String id, BlockBackend disk, BlockNode overlay) throws BlockIOException {
        for (BlockNode point : ExternalSnapshots.snapshotPoints(disk.rootNode())) {
            if (point == overlay || GraphWalk.isBelowInChain(point, overlay)) {
                return point;
            }
        }
        throw invalid(id, "overlay '" + overlay.nodeName() + "' is not in a chain the disk reads");
    }

    /** The one node whose backing is {@code top}: an intermediate commit gives it the base instead. */
    private BlockNode overlayAbove(String id, BlockNode top) throws BlockIOException {
        BlockNode found = null;
        for (BlockNode n : graph().nodes()) {
            if (n.cowChild() != null && GraphWalk.skipFilters(n.cowChild().node()) == top) {
                if (found != null) {
                    throw invalid(id, "'top' node '" + top.nodeName() + "' is the backing file of more than one node");
                }
                found = n;
            }
        }
        if (found == null) {
            throw invalid(id, "'top' node '" + top.nodeName() + "' is neither what the disk uses nor a backing file");
        }
        return found;
    }

    /** {@code img1-m1}, then {@code img1-m2} for a mirror of that: names stay short however often a node moves. */
    private String mirrorName(String source) {
        String stem = source.replaceFirst("-m[0-9]+$", "");
        for (int i = 1; ; i++) {
            String name = ExternalSnapshots.boundedName(graph(), stem + "-m" + i, Set.of());
            if (name.equals(stem + "-m" + i) || i > 99) {
                return name;
            }
        }
    }

    private static BlockIOException invalid(String id, String problem) {
        return new BlockIOException(Errno.EINVAL, "job '" + id + "': " + problem);
    }
}
