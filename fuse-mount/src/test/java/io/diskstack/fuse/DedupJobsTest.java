package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.Stack;
import io.diskstack.core.job.BlockJob;
import io.diskstack.core.job.JobClock;
import io.diskstack.core.job.JobCommands;
import io.diskstack.core.job.JobStatus;
import io.diskstack.core.snapshot.StackSnapshots;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Jobs around a dedup disk over two qcow2 images, in process: an external snapshot puts overlays
 * on both children at once, a commit merges both and pivots both back, a backup copies what the
 * disk shows; the data reads back, and qemu-img and diskstack check find the images clean.
 */
class DedupJobsTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private Stack stack;

    @AfterEach
    void close() {
        if (stack != null) {
            stack.close();
        }
    }

    private BlockBackend disk() {
        return stack.graph().backend("disk0");
    }

    private void write(long offset, byte[] data) throws Exception {
        disk().write(offset, ByteBuffer.wrap(data), 0);
    }

    private byte[] read(long offset, int length) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(length);
        disk().read(offset, b);
        return b.array();
    }

    private static void finish(BlockJob job) throws Exception {
        assertEquals(JobStatus.CONCLUDED, job.await(60_000), "job " + job.id() + ": " + job.error());
    }

    @Test
    void snapshotCommitAndBackupAroundADedupDisk() throws Exception {
        Shell.requireTool("qemu-img");
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("meta.qcow2").toString(), "32M").ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("data.qcow2").toString(), "16M").ok();
        assertEquals(0, diskstack("create", "-f", "dedup", "-o", "metadata.driver=qcow2,metadata.file.driver=file,"
                + "metadata.file.filename=" + dir.resolve("meta.qcow2") + ",data.driver=qcow2,data.file.driver=file,"
                + "data.file.filename=" + dir.resolve("data.qcow2"), "16M").code());
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [
                   {"driver": "qcow2", "node-name": "meta", "file": {"driver": "file", "filename": "meta.qcow2"}},
                   {"driver": "qcow2", "node-name": "data", "file": {"driver": "file", "filename": "data.qcow2"}},
                   {"driver": "dedup", "node-name": "dd0", "metadata": "meta", "data": "data"}],
                 "exports": [{"id": "disk0", "node-name": "dd0", "writable": true}]}
                """);
        stack = Stack.open(ConfigReader.readFile(config), DriverRegistry.load());
        JobCommands jobs = new JobCommands(stack, stack.jobs(), JobClock.SYSTEM);
        byte[] a = TestGraphs.randomBytes(1, 2 * MIB);
        byte[] b = TestGraphs.randomBytes(2, MIB);
        write(0, a);
        write(4 * MIB, a);
        StackSnapshots.external(stack, "disk0", StackSnapshots.ExternalCommand.parse("s1", dir));
        assertEquals("meta-s1", stack.graph().node("dd0").child("metadata").node().nodeName());
        assertEquals("data-s1", stack.graph().node("dd0").child("data").node().nodeName());
        write(8 * MIB, b);
        write(10 * MIB, a);
        finish(jobs.commit("disk0", "s1"));
        assertEquals("meta", stack.graph().node("dd0").child("metadata").node().nodeName());
        assertEquals("data", stack.graph().node("dd0").child("data").node().nodeName());
        finish(jobs.backup("disk0", "target=backup.qcow2 format=qcow2"));
        assertArrayEquals(a, read(0, 2 * MIB));
        assertArrayEquals(a, read(10 * MIB, 2 * MIB));
        assertArrayEquals(b, read(8 * MIB, MIB));
        assertEquals(String.valueOf(3 * MIB), String.valueOf(stack.graph().node("dd0").stats().get(
                "dedup.physical-bytes")), "a and b, each once");
        stack.close();
        stack = null;
        for (String image : new String[] {"meta.qcow2", "data.qcow2", "backup.qcow2"}) {
            run("qemu-img", "check", "-q", dir.resolve(image).toString()).ok();
        }
        Path plain = dir.resolve("backup.raw");
        run("qemu-img", "convert", "-O", "raw", dir.resolve("backup.qcow2").toString(), plain.toString()).ok();
        byte[] all = Files.readAllBytes(plain);
        assertArrayEquals(b, java.util.Arrays.copyOfRange(all, 8 * MIB, 9 * MIB), "the backup holds what the disk showed");
        assertEquals(0, diskstack("check", "-f", "dedup", "-o", "metadata.driver=qcow2,metadata.file.driver=file,"
                + "metadata.file.filename=" + dir.resolve("meta.qcow2") + ",data.driver=qcow2,data.file.driver=file,"
                + "data.file.filename=" + dir.resolve("data.qcow2")).code());
    }
}
