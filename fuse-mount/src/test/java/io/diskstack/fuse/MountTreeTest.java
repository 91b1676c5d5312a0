package io.diskstack.fuse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockNode;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.Stack;
import io.diskstack.core.control.ControlContext;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlTreeProvider;
import io.diskstack.fuse.MountTree.Control;
import io.diskstack.fuse.MountTree.Folder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The control tree comes from providers, and is rebuilt when the graph changes, not on lookups. */
class MountTreeTest {
    @TempDir
    Path dir;
    private Stack stack;

    /** A provider only this test knows: {@code probe/NODE} for every node, counting its calls. */
    static final class ProbeProvider implements ControlTreeProvider {
        final AtomicInteger calls = new AtomicInteger();

        @Override
        public Map<String, ControlFile> files(ControlContext context) {
            calls.incrementAndGet();
            Map<String, ControlFile> files = new TreeMap<>();
            for (BlockNode n : context.stack().graph().nodes()) {
                files.put("probe/" + n.nodeName(), ControlFile.readOnly(() -> n.driver().name() + "\n"));
            }
            return files;
        }
    }

    @BeforeEach
    void open() throws Exception {
        Files.writeString(dir.resolve("config.json"), """
                {"create": [{"filename": "a.img", "format": "raw", "size": "1M"}],
                 "blockdev": [{"driver": "file", "node-name": "f0", "filename": "a.img"},
                              {"driver": "raw", "node-name": "r0", "file": "f0"}],
                 "exports": [{"id": "disk0", "node-name": "r0", "writable": true}]}
                """);
        stack = Stack.open(ConfigReader.readFile(dir.resolve("config.json")), DriverRegistry.load());
    }

    @AfterEach
    void close() {
        stack.close();
    }

    private MountTree treeWith(ProbeProvider probe) {
        List<ControlTreeProvider> providers = new ArrayList<>(ControlTreeProvider.load());
        providers.add(probe);
        return new MountTree(stack, providers);
    }

    @Test
    void aProviderAddedInATestAppearsInTheTree() {
        MountTree tree = treeWith(new ProbeProvider());
        assertEquals("raw\n", assertInstanceOf(Control.class, tree.lookup("/.control/probe/r0")).file().read());
        assertEquals("probe", assertInstanceOf(Control.class, tree.lookup("/.control/probe/f0")).folder());
        assertEquals(List.of("f0", "last-error", "r0"),
                List.copyOf(assertInstanceOf(Folder.class, tree.lookup("/.control/probe")).children()));
        assertTrue(assertInstanceOf(Folder.class, tree.lookup("/.control")).children().contains("probe"));
        // the built-in files are there too, from the same kind of provider
        assertInstanceOf(Control.class, tree.lookup("/.control/disk0/snapshot-external"));
        assertInstanceOf(Control.class, tree.lookup("/.control/graph"));
        assertNull(tree.lookup("/.control/probe/nothing"));
    }

    @Test
    void theTreeIsRebuiltAfterAGraphChangeAndNotOnLookups() throws Exception {
        ProbeProvider probe = new ProbeProvider();
        MountTree tree = treeWith(probe);
        for (int i = 0; i < 5; i++) {
            tree.lookup("/.control/disk0/stats");
            tree.lookup("/.control/probe/r0");
            tree.lookup("/disk0");
        }
        assertEquals(1, tree.builds());
        assertEquals(1, probe.calls.get());
        assertNull(tree.lookup("/.control/probe/r0-s1"));

        // an external snapshot opens two nodes and re-points the export: the next lookup sees them
        Control external = assertInstanceOf(Control.class, tree.lookup("/.control/disk0/snapshot-external"));
        external.file().write("s1");
        assertEquals("qcow2\n", assertInstanceOf(Control.class, tree.lookup("/.control/probe/r0-s1")).file().read());
        assertInstanceOf(Control.class, tree.lookup("/.control/probe/r0-s1-file"));
        int builds = tree.builds();
        assertTrue(builds > 1, "rebuilt after the change");
        for (int i = 0; i < 5; i++) {
            tree.lookup("/.control/probe/r0-s1");
        }
        assertEquals(builds, tree.builds());
        assertEquals(builds, probe.calls.get());
        // state a provider keeps survives the rebuild
        assertTrue(external.file().read().startsWith("s1 r0-s1 "), external.file().read());
        assertTrue(assertInstanceOf(Control.class, tree.lookup("/.control/disk0/snapshot-external")).file().read()
                .startsWith("s1 r0-s1 "));
    }
}
