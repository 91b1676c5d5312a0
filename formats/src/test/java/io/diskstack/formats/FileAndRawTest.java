package io.diskstack.formats;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.ConfigException;
import io.diskstack.core.RequestFlags;
import io.diskstack.core.testing.TestGraphs;
import io.diskstack.formats.file.FileDriver;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileAndRawTest {
    @TempDir
    Path dir;

    @Test
    void rawWindowMapsOntoTheFile() throws Exception {
        Path img = dir.resolve("a.img");
        FileDriver.createSparseFile(img, 3 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "raw", "node-name", "r0", "offset", "1M", "size", "1M",
                    "file", Map.of("driver", "file", "filename", "a.img")));
            BlockBackend b = g.addBackend("d", "r0", true);
            assertEquals(1 << 20, b.size());
            b.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3, 4}), 0);
        }
        byte[] all = Files.readAllBytes(img);
        assertArrayEquals(new byte[] {1, 2, 3, 4}, java.util.Arrays.copyOfRange(all, 1 << 20, (1 << 20) + 4));
    }

    @Test
    void aThreadWithAPendingInterruptDoesNotCloseTheFileForEveryone() throws Exception {
        FileDriver.createSparseFile(dir.resolve("a.img"), 1 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "file", "node-name", "f0", "filename", "a.img"));
            BlockBackend b = g.addBackend("d", "f0", true);
            Thread.currentThread().interrupt();
            try {
                b.write(0, ByteBuffer.wrap(new byte[] {7, 7}), 0);
                b.read(0, ByteBuffer.allocate(2));
                b.flush();
                assertTrue(Thread.currentThread().isInterrupted(), "the caller's interrupt is kept");
            } finally {
                Thread.interrupted();
            }
            ByteBuffer back = ByteBuffer.allocate(2);
            b.read(0, back);
            assertArrayEquals(new byte[] {7, 7}, back.array());
        }
    }

    @Test
    void badRawOptionsNameTheKey() throws Exception {
        FileDriver.createSparseFile(dir.resolve("a.img"), 1 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "file", "node-name", "f0", "filename", "a.img"));
            ConfigException e = assertThrows(ConfigException.class,
                    () -> g.open(opts("driver", "raw", "node-name", "r0", "file", "f0", "offset", "2M")));
            assertEquals("blockdev 'r0' (raw): 'offset' value 2097152 is past the end of the file (1048576 bytes)",
                    e.getMessage());
            e = assertThrows(ConfigException.class,
                    () -> g.open(opts("driver", "raw", "node-name", "r1", "file", "f0", "size", "1000")));
            assertEquals("blockdev 'r1' (raw): 'size' value 1000 is not a multiple of 512", e.getMessage());
            e = assertThrows(ConfigException.class,
                    () -> g.open(opts("driver", "file", "node-name", "f1", "filename", "missing.img")));
            assertEquals("blockdev 'f1' (file): 'filename' '" + dir.resolve("missing.img") + "' does not exist",
                    e.getMessage());
            e = assertThrows(ConfigException.class,
                    () -> g.open(opts("driver", "file", "node-name", "f2", "filename", "a.img", "aio", "native")));
            assertTrue(e.getMessage().contains("'aio' value 'native' is not supported"), e.getMessage());
        }
    }

    @Test
    void discardPunchesHolesAndBlockStatusSeesThem() throws Exception {
        Path img = dir.resolve("a.img");
        FileDriver.createSparseFile(img, 4 << 20);
        try (BlockGraph g = TestGraphs.newGraph(dir)) {
            g.open(opts("driver", "file", "node-name", "f0", "filename", "a.img"));
            g.open(opts("driver", "raw", "node-name", "r0", "file", "f0"));
            BlockBackend b = g.addBackend("d", "r0", true);
            b.write(0, ByteBuffer.wrap(TestGraphs.randomBytes(1, 2 << 20)), 0);
            b.flush();
            long before = Files.readAttributes(img, java.nio.file.attribute.PosixFileAttributes.class).size();
            BlockStatus data = b.blockStatus(0, 4 << 20);
            assertTrue(data.isData() && data.length() >= 1 << 20, data.toString());
            b.discard(1 << 20, 1 << 20);
            BlockStatus hole = b.blockStatus(1 << 20, 3 << 20);
            assertTrue(hole.isZero() && !hole.isData(), "after discard: " + hole);
            b.writeZeroes(0, 4096, RequestFlags.MAY_UNMAP);
            ByteBuffer back = ByteBuffer.allocate(4096);
            b.read(0, back);
            assertArrayEquals(new byte[4096], back.array());
            assertEquals(4 << 20, before);
            assertEquals(4 << 20, Files.size(img), "discard keeps the size");
        }
    }

    @Test
    void createRefusesToOverwrite() throws Exception {
        Path img = dir.resolve("a.img");
        Files.writeString(img, "precious");
        ConfigException e = assertThrows(ConfigException.class, () -> FileDriver.createSparseFile(img, 1 << 20));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        assertEquals("precious", Files.readString(img));
    }
}
