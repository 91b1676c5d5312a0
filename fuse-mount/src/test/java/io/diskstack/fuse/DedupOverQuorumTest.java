package io.diskstack.fuse;

import static io.diskstack.fuse.InProcessCli.diskstack;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.Stack;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.fuse.InProcessCli.Outcome;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A quorum of three raw files under a dedup node's data child, in process: created through the
 * quorum (nested options), written with duplicates, each distinct block stored once in every
 * child, a damaged child outvoted, and the device checks clean through the quorum.
 */
class DedupOverQuorumTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void dedupOverAQuorumStoresEachBlockOnceInEveryChild() throws Exception {
        for (int i = 0; i < 3; i++) {
            try (RandomAccessFile f = new RandomAccessFile(dir.resolve("q" + i + ".img").toFile(), "rw")) {
                f.setLength(9 * MIB);
            }
        }
        StringBuilder quorum = new StringBuilder("data.driver=quorum,data.vote-threshold=2");
        for (int i = 0; i < 3; i++) {
            quorum.append(",data.children.").append(i).append(".driver=file,data.children.").append(i)
                    .append(".filename=").append(dir.resolve("q" + i + ".img"));
        }
        String options = "metadata=" + dir.resolve("meta.img") + "," + quorum;
        Outcome r = diskstack("create", "-f", "dedup", "-o", options, "16M");
        assertEquals(0, r.code(), r.err());
        Path config = dir.resolve("config.json");
        Files.writeString(config, """
                {"blockdev": [
                   {"driver": "quorum", "node-name": "q", "vote-threshold": 2, "children": [
                      {"driver": "file", "filename": "q0.img"}, {"driver": "file", "filename": "q1.img"},
                      {"driver": "file", "filename": "q2.img"}]},
                   {"driver": "dedup", "node-name": "dd0", "metadata": {"driver": "file", "filename": "meta.img"},
                    "data": "q"}],
                 "exports": [{"id": "disk0", "node-name": "dd0", "writable": true}]}
                """);
        byte[] a = TestGraphs.randomBytes(1, 2 * MIB);
        try (Stack stack = Stack.open(ConfigReader.readFile(config), DriverRegistry.load())) {
            BlockBackend disk = stack.graph().backend("disk0");
            for (int copy = 0; copy < 6; copy++) {
                disk.write((long) copy * 2 * MIB, ByteBuffer.wrap(a), 0);
            }
            disk.flush();
            assertEquals(2L * MIB, stack.graph().node("dd0").stats().get("dedup.physical-bytes"));
        }
        byte[] q0 = Files.readAllBytes(dir.resolve("q0.img"));
        assertArrayEquals(q0, Files.readAllBytes(dir.resolve("q1.img")), "the children hold the same blocks");
        assertArrayEquals(q0, Files.readAllBytes(dir.resolve("q2.img")));
        // one child loses a stored block: the other two outvote it
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("q1.img").toFile(), "rw")) {
            f.seek(2 * 4096);
            f.write(new byte[4096]);
        }
        try (Stack stack = Stack.open(ConfigReader.readFile(config), DriverRegistry.load())) {
            BlockBackend disk = stack.graph().backend("disk0");
            for (int copy = 0; copy < 6; copy++) {
                ByteBuffer back = ByteBuffer.allocate(2 * MIB);
                disk.read((long) copy * 2 * MIB, back);
                assertArrayEquals(a, back.array(), "copy " + copy);
            }
        }
        r = diskstack("check", "-f", "dedup", "-o", options);
        assertEquals(0, r.code(), r.out() + r.err());
    }
}
