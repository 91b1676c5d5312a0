package io.diskstack.filters.luks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.diskstack.core.BlockGraph;
import io.diskstack.core.BlockStatus;
import io.diskstack.core.testing.BlockNodeContract;
import io.diskstack.core.testing.TestGraphs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The contract through luks (LUKS1, aes-xts-plain64) over file. */
class LuksContractTest extends BlockNodeContract {
    @Override
    protected String openNodes(BlockGraph graph, Path dir) throws IOException {
        Path img = dir.resolve("disk.luks");
        if (!Files.exists(img)) {
            LuksTesting.create(img, 8 << 20);
            // A new LUKS image reads as noise: encrypt zeroes over it once, in a graph of its own.
            BlockGraph setup = TestGraphs.newGraph(dir);
            try {
                LuksTesting.zeroFill(setup.addBackend("setup", LuksTesting.openLuks(setup, "disk.luks"), true));
            } finally {
                setup.close();
            }
        }
        String top = LuksTesting.openLuks(graph, "disk.luks");
        return top;
    }

    @Test
    void sizeIsTheFileLessThePayload() throws IOException {
        long fileSize = Files.size(dir.resolve("disk.luks"));
        assertEquals(8 << 20, disk.size());
        assertEquals(2 << 20, fileSize - disk.size(), "64-byte key: 8 slots end at sector 4040, payload at 1 MiB multiple");
    }

    @Test
    void ciphertextIsOnDiskNotPlaintext() throws IOException {
        byte[] data = new byte[65536];
        java.util.Arrays.fill(data, (byte) 'A');
        write(0, data);
        disk.flush();
        byte[] file = Files.readAllBytes(dir.resolve("disk.luks"));
        byte[] raw = java.util.Arrays.copyOfRange(file, 2 << 20, (2 << 20) + 65536);
        assertFalse(java.util.Arrays.equals(data, raw));
        assertFalse(new String(file, java.nio.charset.StandardCharsets.ISO_8859_1).contains("AAAAAAAAAAAAAAAA"),
                "plaintext pattern found in the image");
    }

    @Test
    void callersBufferIsNotModifiedByAWrite() throws IOException {
        byte[] data = TestGraphs.randomBytes(77, 300_000);
        java.nio.ByteBuffer src = TestGraphs.direct(data);
        disk.write(4096, src, 0);
        src.rewind();
        byte[] after = new byte[data.length];
        src.get(after);
        assertArrayEquals(data, after);
        assertArrayEquals(data, read(4096, data.length));
    }

    @Test
    void resizingMovesTheEndOfTheFile() throws IOException {
        io.diskstack.core.BlockChild root = graph.node("l0").parents().get(0);
        root.truncate(12 << 20);
        assertEquals(12 << 20, disk.size());
        assertEquals((2 << 20) + (12 << 20), Files.size(dir.resolve("disk.luks")));
        byte[] data = TestGraphs.randomBytes(12, 8192);
        write((12 << 20) - 8192, data);
        assertArrayEquals(data, read((12 << 20) - 8192, 8192));
        org.junit.jupiter.api.Assertions.assertThrows(io.diskstack.core.BlockIOException.class,
                () -> root.truncate((12 << 20) + 100));
    }

    @Test
    void blockStatusNeverSaysZeroOverASparseFile() throws IOException {
        BlockStatus s = disk.blockStatus(disk.size() - 65536, 65536);
        assertFalse(s.isZero(), "a hole in the file decrypts to noise, not zeroes: " + s);
    }
}
