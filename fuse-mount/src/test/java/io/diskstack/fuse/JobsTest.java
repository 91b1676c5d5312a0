package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.nio.file.ExtendedOpenOption;
import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.Errno;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.Stack;
import io.diskstack.core.job.BlockJob;
import io.diskstack.core.job.JobClock;
import io.diskstack.core.job.JobCommands;
import io.diskstack.core.job.JobStatus;
import io.diskstack.core.snapshot.StackSnapshots;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Block jobs on a real graph (qcow2 images made by qemu-img, quorum, throttle), driven through
 * the same commands the control files run, without a mount: what each job leaves in the graph,
 * the config and the images, and what every refused command leaves (nothing).
 */
class JobsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private Path config;
    private Stack stack;
    private JobCommands jobs;

    /** A quorum of three qcow2 images under a throttle node, 16 MiB. */
    @BeforeEach
    void setUp() throws Exception {
        Shell.requireTool("qemu-img");
        for (int i = 0; i < 3; i++) {
            run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("c" + i + ".qcow2").toString(), "16M").ok();
        }
        config = dir.resolve("config.json");
        Files.writeString(config, """
                {"objects": [{"qom-type": "throttle-group", "id": "tg0"},
                             {"qom-type": "secret", "id": "sec0", "data": "backup passphrase"}],
                 "blockdev": [
                   {"driver": "qcow2", "node-name": "img0", "file": {"driver": "file", "filename": "c0.qcow2"}},
                   {"driver": "qcow2", "node-name": "img1", "file": {"driver": "file", "filename": "c1.qcow2"}},
                   {"driver": "qcow2", "node-name": "img2", "file": {"driver": "file", "filename": "c2.qcow2"}},
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "img1", "img2"]},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "q0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """);
        open(JobClock.SYSTEM);
    }

    private void open(JobClock clock) throws Exception {
        stack = Stack.open(ConfigReader.readFile(config), DriverRegistry.load());
        jobs = new JobCommands(stack, stack.jobs(), clock);
    }

    @AfterEach
    void tearDown() {
        if (stack != null) {
            stack.close();
        }
    }

    private BlockBackend disk() {
        return stack.graph().backend("disk0");
    }

    private void write(long offset, byte[] data) throws Exception {
        disk().write(offset, ByteBuffer.wrap(data), 0);
        disk().flush();
    }

    private byte[] read(long offset, int length) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(length);
        disk().read(offset, b);
        return b.array();
    }

    private void snapshot(String name) throws Exception {
        StackSnapshots.external(stack, "disk0", StackSnapshots.ExternalCommand.parse(name, dir));
    }

    private static BlockJob finish(BlockJob job) throws Exception {
        JobStatus end = job.await(60_000);
        assertEquals(JobStatus.CONCLUDED, end, "job " + job.id() + ": " + job.error());
        return job;
    }

    private String blockdevs() throws Exception {
        return JSON.readTree(config.toFile()).get("blockdev").toString();
    }

    private void closeAndCheck(String... images) {
        stack.close();
        stack = null;
        for (String image : images) {
            run("qemu-img", "check", "-q", dir.resolve(image).toString()).ok();
        }
    }

    @Test
    void commitMergesEveryChildsOverlayIntoItsBaseAndTheOverlaysLeave() throws Exception {
        byte[] a = TestGraphs.randomBytes(1, 4 * MIB);
        byte[] b = TestGraphs.randomBytes(2, 4 * MIB);
        write(0, a);
        snapshot("s1");
        write(8 * MIB, b);
        snapshot("s2");
        write(MIB, b);
        assertTrue(blockdevs().contains("img0-s2"));
        finish(jobs.commit("disk0", "s1"));
        byte[] expected = a.clone();
        System.arraycopy(b, 0, expected, MIB, 3 * MIB);
        assertArrayEquals(expected, read(0, 4 * MIB));
        assertArrayEquals(b, read(8 * MIB, 4 * MIB));
        String devs = blockdevs();
        assertFalse(devs.contains("-s1") || devs.contains("-s2"), devs);
        assertTrue(JSON.readTree(config.toFile()).get("external-snapshots") == null, "both snapshots are gone");
        assertNull(stack.graph().node("img0-s1"));
        assertFalse(stack.graph().node("img0").isReadOnly(), "the base is the disk's image again");
        closeAndCheck("c0.qcow2", "c1.qcow2", "c2.qcow2");
        for (int i = 1; i < 3; i++) {
            run("qemu-img", "compare", "-q", dir.resolve("c0.qcow2").toString(),
                    dir.resolve("c" + i + ".qcow2").toString()).ok();
        }
        open(JobClock.SYSTEM);
        assertArrayEquals(expected, read(0, 4 * MIB), "after a remount too");
        assertTrue(Files.exists(dir.resolve("c0-s1.qcow2")), "overlay files stay unless delete=on");
    }

    @Test
    void anIntermediateCommitGivesTheOverlayAboveANewBackingFile() throws Exception {
        byte[] a = TestGraphs.randomBytes(3, MIB);
        snapshot("s1");
        write(0, a);
        snapshot("s2");
        write(2 * MIB, a);
        finish(jobs.commit("disk0", "top=img0-s1 base=img0 job-id=c0 delete=on"));
        assertArrayEquals(a, read(0, MIB));
        assertArrayEquals(a, read(2 * MIB, MIB));
        assertEquals("img0", stack.graph().node("img0-s2").cowChild().node().nodeName());
        assertFalse(Files.exists(dir.resolve("c0-s1.qcow2")), "delete=on");
        JsonNode info = JSON.readTree(run("qemu-img", "info", "-U", "--output=json",
                dir.resolve("c0-s2.qcow2").toString()).ok().stdout());
        assertEquals("c0.qcow2", info.get("backing-filename").asText());
        assertTrue(blockdevs().contains("{\"driver\":\"qcow2\",\"node-name\":\"img0-s2\",\"file\":\"img0-s2-file\","
                + "\"backing\":\"img0\"}"), blockdevs());
    }

    @Test
    void streamFillsTheOverlaysAndTheyNameNoBackingFile() throws Exception {
        byte[] a = TestGraphs.randomBytes(4, 2 * MIB);
        write(0, a);
        snapshot("s1");
        write(4 * MIB, a);
        finish(jobs.stream("disk0", "s1"));
        assertArrayEquals(a, read(0, 2 * MIB));
        assertNull(stack.graph().node("img0"), "the old base left the graph");
        for (int i = 0; i < 3; i++) {
            JsonNode info = JSON.readTree(run("qemu-img", "info", "-U", "--output=json",
                    dir.resolve("c" + i + "-s1.qcow2").toString()).ok().stdout());
            assertNull(info.get("backing-filename"), info.toString());
        }
        assertTrue(blockdevs().contains("\"backing\":null"), blockdevs());
        closeAndCheck("c0-s1.qcow2", "c1-s1.qcow2", "c2-s1.qcow2");
        Files.delete(dir.resolve("c0.qcow2"));
        open(JobClock.SYSTEM);
        assertArrayEquals(a, read(0, 2 * MIB), "reads without the old bases");
    }

    @Test
    void mirrorMovesOneQuorumChildToANewImage() throws Exception {
        byte[] a = TestGraphs.randomBytes(5, 3 * MIB);
        write(MIB, a);
        finish(jobs.mirror("img1", "target=moved.qcow2 format=qcow2"));
        assertEquals("img1-m1", stack.graph().node("q0").child("children.1").node().nodeName());
        assertNull(stack.graph().node("img1"));
        assertArrayEquals(a, read(MIB, 3 * MIB));
        assertTrue(blockdevs().contains("\"children\":[\"img0\",\"img1-m1\",\"img2\"]"), blockdevs());
        closeAndCheck("moved.qcow2");
        run("qemu-img", "compare", "-q", dir.resolve("c0.qcow2").toString(), dir.resolve("moved.qcow2").toString())
                .ok();
    }

    @Test
    void aMirrorWritesPastThePageCacheAndItsPivotedTargetHasTheRecordedCache() throws Exception {
        assumeTrue(takesDirectIo(dir), "the file system of " + dir
                + " refuses O_DIRECT: the target is written through the cache");
        SteppingClock clock = reopenWithSteppingClock();
        byte[] a = TestGraphs.randomBytes(8, 8 * MIB);
        write(0, a);
        BlockJob job = jobs.mirror("img1", "target=moved.qcow2 format=qcow2 speed=1M");
        Path moved = dir.resolve("moved.qcow2").toRealPath();
        assertTrue(openFlags(moved).stream().anyMatch(f -> (f & O_DIRECT) != 0), "the copy writes with O_DIRECT: "
                + openFlags(moved));
        byte[] b = TestGraphs.randomBytes(9, MIB);
        write(3 * MIB, b);
        System.arraycopy(b, 0, a, 3 * MIB, MIB);
        clock.steps.release(Integer.MAX_VALUE / 2);
        finish(job);
        List<Integer> after = openFlags(moved);
        assertFalse(after.isEmpty(), "the target is open in the graph");
        assertTrue(after.stream().noneMatch(f -> (f & O_DIRECT) != 0), "after the pivot: " + after);
        assertFalse(blockdevs().contains("cache.direct"), blockdevs());
        assertArrayEquals(a, read(0, 8 * MIB));
        closeAndCheck("moved.qcow2");
        run("qemu-img", "compare", "-q", dir.resolve("c0.qcow2").toString(), moved.toString()).ok();
    }

    /** O_DIRECT in fdinfo's flags: the value differs between architectures. */
    private static final int O_DIRECT = switch (System.getProperty("os.arch")) {
        case "aarch64", "arm" -> 0200000;
        case "ppc64le", "ppc64" -> 0400000;
        default -> 040000;
    };

    private static boolean takesDirectIo(Path dir) throws IOException {
        Path probe = dir.resolve(".direct-probe");
        try (FileChannel ignored = FileChannel.open(probe, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                ExtendedOpenOption.DIRECT)) {
            return true;
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        } finally {
            Files.deleteIfExists(probe);
        }
    }

    /** The open flags (as in /proc/PID/fdinfo) of every descriptor this process holds on {@code file}. */
    private static List<Integer> openFlags(Path file) throws Exception {
        List<Integer> flags = new ArrayList<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                Path target;
                try {
                    target = Files.readSymbolicLink(fd);
                } catch (IOException e) {
                    continue; // closed meanwhile
                }
                if (target.equals(file)) {
                    for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo").resolve(fd.getFileName()))) {
                        if (line.startsWith("flags:")) {
                            flags.add(Integer.parseInt(line.substring("flags:".length()).trim(), 8));
                        }
                    }
                }
            }
        }
        return flags;
    }

    private SteppingClock reopenWithSteppingClock() throws Exception {
        SteppingClock clock = new SteppingClock();
        stack.close();
        open(clock);
        return clock;
    }

    /** A clock whose waits return only when the test lets them: the job is held between chunks. */
    static final class SteppingClock implements JobClock {
        final Semaphore steps = new Semaphore(0);

        @Override
        public long nanoTime() {
            return 0;
        }

        @Override
        public void sleepNanos(long nanos) throws InterruptedException {
            steps.acquire();
        }
    }

    @Test
    void backupIsThePointInTimeOfItsStartWhileWritesGoOn() throws Exception {
        SteppingClock clock = reopenWithSteppingClock();
        byte[] a = TestGraphs.randomBytes(6, 16 * MIB);
        write(0, a);
        BlockJob job = jobs.backup("disk0", "target=backup.qcow2 format=qcow2 speed=1M");
        // the job copies at most a granule or two before it waits on the clock: overwrite everything
        write(0, TestGraphs.randomBytes(7, 16 * MIB));
        clock.steps.release(Integer.MAX_VALUE / 2);
        finish(job);
        assertTrue(Files.exists(dir.resolve("backup.qcow2")));
        assertNull(stack.graph().node("backup-disk0-target"), "the target left the graph");
        Path expected = dir.resolve("expected.raw");
        Files.write(expected, a);
        run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", dir.resolve("backup.qcow2").toString(),
                expected.toString()).ok();
    }

    @Test
    void anEncryptedBackupOpensWithQemusLuksDriver() throws Exception {
        byte[] a = TestGraphs.randomBytes(8, 2 * MIB);
        write(3 * MIB, a);
        Path disk = dir.resolve("disk.raw");
        Files.write(disk, read(0, 16 * MIB));
        finish(jobs.backup("disk0", "target=b.luks format=raw encrypt=sec0"));
        finish(jobs.backup("disk0", "target=b.qcow2 format=qcow2 encrypt=sec0"));
        String secret = "secret,id=sec0,data=backup passphrase";
        run("qemu-img", "convert", "--object", secret, "--image-opts",
                "driver=luks,key-secret=sec0,file.filename=" + dir.resolve("b.luks"), "-O", "raw",
                dir.resolve("b1.raw").toString()).ok();
        run("qemu-img", "convert", "--object", secret, "--image-opts",
                "driver=qcow2,file.driver=luks,file.key-secret=sec0,file.file.filename=" + dir.resolve("b.qcow2"),
                "-O", "raw", dir.resolve("b2.raw").toString()).ok();
        assertArrayEquals(Files.readAllBytes(disk), Files.readAllBytes(dir.resolve("b1.raw")));
        assertArrayEquals(Files.readAllBytes(disk), Files.readAllBytes(dir.resolve("b2.raw")));
    }

    @Test
    void cancelLeavesTheGraphAsItWas() throws Exception {
        SteppingClock clock = reopenWithSteppingClock();
        snapshot("s1");
        write(0, TestGraphs.randomBytes(9, 4 * MIB));
        String before = Files.readString(config);
        BlockJob job = jobs.commit("disk0", "s1 speed=1M");
        assertFalse(stack.graph().node("img0").isReadOnly(), "the base is writable for the job");
        job.cancel();
        clock.steps.release(1000);
        assertEquals(JobStatus.ABORTED, job.await(30_000));
        assertEquals("cancelled", job.error());
        assertEquals(before, Files.readString(config));
        assertTrue(stack.graph().node("img0").isReadOnly(), "frozen again");
        assertEquals("img0-s1", stack.graph().node("q0").child("children.0").node().nodeName());
    }

    /** Each refused command: its errno, a one-line message naming job, node and option, and no change. */
    @Test
    void badCommandsAreRefusedAndChangeNothing() throws Exception {
        snapshot("s1");
        Files.createDirectory(dir.resolve("folder"));
        Files.writeString(dir.resolve("exists.qcow2"), "x");
        String before = Files.readString(config);
        List<String> nodesBefore = stack.graph().nodes().stream().map(n -> n.nodeName()).toList();
        refused(Errno.ENOENT, "job 'commit-disk0': export 'disk0' has no external snapshot 'nope'",
                () -> jobs.commit("disk0", "nope"));
        refused(Errno.ENOENT, "job 'commit-disk0': 'top' names no node 'x'",
                () -> jobs.commit("disk0", "top=x base=img0"));
        refused(Errno.EINVAL, "job 'commit-disk0': 'base' node 'img1' is not below 'top' node 'img0-s1' in its "
                + "backing chain", () -> jobs.commit("disk0", "top=img0-s1 base=img1"));
        refused(Errno.EINVAL, "job 'commit-disk0': 'speed' value 'fast' is not a number of bytes per second",
                () -> jobs.commit("disk0", "s1 speed=fast"));
        refused(Errno.EINVAL, "job 'commit-disk0': unknown option 'colour'", () -> jobs.commit("disk0", "s1 colour=red"));
        refused(Errno.EEXIST, "job 'mirror-img1': 'target' " + dir.resolve("exists.qcow2") + " exists already",
                () -> jobs.mirror("img1", "target=exists.qcow2 format=qcow2"));
        refused(Errno.EISDIR, "job 'backup-disk0': 'target' " + dir.resolve("folder") + " is a folder",
                () -> jobs.backup("disk0", "target=folder format=qcow2"));
        refused(Errno.EINVAL, "job 'backup-disk0': 'format' 'throttle' is not an image format",
                () -> jobs.backup("disk0", "target=b.img format=throttle"));
        refused(Errno.ENOENT, "job 'stream-disk0': export 'disk0' has no external snapshot 's9'",
                () -> jobs.stream("disk0", "s9"));
        refused(Errno.ENOENT, "job 'commit-disk9': no export 'disk9'", () -> jobs.commit("disk9", "s1"));
        assertEquals(before, Files.readString(config), "the config is byte-equal");
        assertEquals(nodesBefore, stack.graph().nodes().stream().map(n -> n.nodeName()).toList());
        assertFalse(Files.exists(dir.resolve("b.img")));
        assertTrue(stack.jobs().list().isEmpty(), "no job was started");
    }

    @Test
    void aJobOnAReadOnlyExportOrBesideAnotherWriterIsRefused() throws Exception {
        stack.close();
        Files.writeString(config, Files.readString(config).replace(
                "\"exports\": [{\"id\": \"disk0\", \"node-name\": \"t0\", \"writable\": true}]",
                "\"exports\": [{\"id\": \"disk0\", \"node-name\": \"t0\", \"writable\": true},"
                        + " {\"id\": \"ro\", \"node-name\": \"q0\"}]"));
        open(JobClock.SYSTEM);
        refused(Errno.EROFS, "job 'commit-ro': export 'ro' is read-only", () -> jobs.commit("ro", "s1"));
        snapshot("s1");
        BlockJob first = jobs.commit("disk0", "s1 pivot=off");
        refused(Errno.EBUSY, "job 'mirror-img0-s1': node 'img0-s1' is in use by job 'commit-disk0' (commit)",
                () -> jobs.mirror("img0-s1", "target=m.qcow2 format=qcow2"));
        first.cancel();
        assertEquals(JobStatus.ABORTED, first.await(30_000));
    }

    private interface Command {
        void run() throws Exception;
    }

    private static void refused(Errno errno, String message, Command command) {
        Exception e = assertThrows(Exception.class, command::run);
        Errno got = e instanceof BlockIOException b ? b.errno() : e instanceof ConfigException c ? c.errno() : null;
        assertEquals(errno, got, e.toString());
        assertTrue(e.getMessage().startsWith(message), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    /** A commit's base is the job's alone to write: another writer of it refuses the job (issue 16). */
    @Test
    void aCommitWhoseBaseAnotherExportWritesIsRefusedNamingBoth() throws Exception {
        stack.close();
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "c0.qcow2", "-F", "qcow2",
                dir.resolve("top.qcow2").toString()).ok();
        Files.writeString(config, """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "base", "file": {"driver": "file", "filename": "c0.qcow2"}},
                   {"driver": "qcow2", "node-name": "top", "file": {"driver": "file", "filename": "top.qcow2"},
                    "backing": "base"}],
                 "exports": [{"id": "disk0", "node-name": "top", "writable": true},
                             {"id": "disk1", "node-name": "base", "writable": true}]}
                """);
        open(JobClock.SYSTEM);
        String before = Files.readString(config);
        refused(Errno.EBUSY, "job 'commit-disk0': node base is written by export 'disk1', and this use does not "
                + "share write", () -> jobs.commit("disk0", "top=top base=base"));
        assertEquals(before, Files.readString(config));
        assertTrue(stack.jobs().list().isEmpty());
    }

    /**
     * A node shaped like dedup (core's test driver {@code pair}: metadata and data children that
     * only make sense together) gets snapshots and jobs from its declaration alone: an external
     * snapshot puts overlays on both children, a commit merges both and pivots both.
     */
    @Test
    void aTwoChildNodeIsSnapshottedAndCommittedFromItsShapeAlone() throws Exception {
        stack.close();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("meta.qcow2").toString(), "1M").ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("data.qcow2").toString(), "16M").ok();
        Files.writeString(config, """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "meta", "file": {"driver": "file", "filename": "meta.qcow2"}},
                   {"driver": "qcow2", "node-name": "data", "file": {"driver": "file", "filename": "data.qcow2"}},
                   {"driver": "pair", "node-name": "p0", "metadata": "meta", "data": "data"}],
                 "exports": [{"id": "disk0", "node-name": "p0", "writable": true}]}
                """);
        open(JobClock.SYSTEM);
        byte[] a = TestGraphs.randomBytes(10, 2 * MIB);
        byte[] b = TestGraphs.randomBytes(11, MIB);
        write(0, a);
        snapshot("s1");
        assertEquals("meta-s1", stack.graph().node("p0").child("metadata").node().nodeName());
        assertEquals("data-s1", stack.graph().node("p0").child("data").node().nodeName());
        write(4 * MIB, b);
        finish(jobs.commit("disk0", "s1"));
        assertEquals("meta", stack.graph().node("p0").child("metadata").node().nodeName());
        assertEquals("data", stack.graph().node("p0").child("data").node().nodeName());
        assertArrayEquals(a, read(0, 2 * MIB));
        assertArrayEquals(b, read(4 * MIB, MIB));
        assertArrayEquals(new byte[MIB], read(2 * MIB, MIB), "never written: the metadata child says so");
        closeAndCheck("meta.qcow2", "data.qcow2");
        open(JobClock.SYSTEM);
        assertArrayEquals(b, read(4 * MIB, MIB));
    }
}
