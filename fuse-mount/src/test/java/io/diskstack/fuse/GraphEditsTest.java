package io.diskstack.fuse;

import static io.diskstack.core.testing.Shell.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockIOException;
import io.diskstack.core.ConfigException;
import io.diskstack.core.DriverRegistry;
import io.diskstack.core.Errno;
import io.diskstack.core.ExportGuard;
import io.diskstack.core.config.ConfigReader;
import io.diskstack.core.config.Stack;
import io.diskstack.core.control.ControlContext;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlTree;
import io.diskstack.core.control.ControlTreeProvider;
import io.diskstack.core.control.LastErrors;
import io.diskstack.core.edit.GraphEdits;
import io.diskstack.core.job.BlockJob;
import io.diskstack.core.job.JobStatus;
import io.diskstack.core.testing.Shell;
import io.diskstack.core.testing.TestGraphs;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Live graph edits on a real graph, through the commands the control files run: each one
 * recorded in the config so that a remount builds the same graph; every refused one leaves the
 * graph and the config as they were; a quorum rebuilt after a lost disk ends with equal children.
 */
class GraphEditsTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;
    private Path config;
    private Stack stack;
    private GraphEdits edits;

    @BeforeEach
    void setUp() throws Exception {
        Shell.requireTool("qemu-img");
        for (int i = 0; i < 4; i++) {
            run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("c" + i + ".qcow2").toString(), "8M").ok();
        }
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("small.qcow2").toString(), "4M").ok();
        config = dir.resolve("config.json");
        Files.writeString(config, """
                {"objects": [{"qom-type": "throttle-group", "id": "tg0"}],
                 "blockdev": [
                   {"driver": "qcow2", "node-name": "img0", "file": {"driver": "file", "filename": "c0.qcow2"}},
                   {"driver": "qcow2", "node-name": "img1", "file": {"driver": "file", "filename": "c1.qcow2"}},
                   {"driver": "qcow2", "node-name": "img2", "file": {"driver": "file", "filename": "c2.qcow2"}},
                   {"driver": "blkdebug", "node-name": "dead1", "file": "img1",
                    "inject-error": [{"iotype": "read+write+write-zeroes+flush+block-status", "errno": "EIO"}]},
                   {"driver": "quorum", "node-name": "q0", "vote-threshold": 2, "children": ["img0", "dead1", "img2"]},
                   {"driver": "throttle", "node-name": "t0", "throttle-group": "tg0", "file": "q0"}],
                 "exports": [{"id": "disk0", "node-name": "t0", "writable": true}]}
                """);
        open();
    }

    private void open() throws Exception {
        stack = Stack.open(ConfigReader.readFile(config), DriverRegistry.load());
        edits = new GraphEdits(stack, ExportGuard.NONE);
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

    private byte[] read(long offset, int length) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(length);
        disk().read(offset, b);
        return b.array();
    }

    @Test
    void aDeadQuorumChildIsReplacedByAnEmptyImageAndResynced() throws Exception {
        byte[] a = TestGraphs.randomBytes(1, 6 * MIB);
        disk().write(0, ByteBuffer.wrap(a), 0);
        disk().flush();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("new1.qcow2").toString(), "8M").ok();
        edits.blockdevAdd("driver=qcow2,node-name=new1,file.driver=file,file.filename=new1.qcow2");
        edits.blockdevReplace("parent=q0,child=children.1,new-child=new1");
        BlockJob resync = stack.jobs().get("resync-q0");
        assertNotNull(resync, "a resync started");
        // the disk serves (and takes writes) while the resync runs
        byte[] b = TestGraphs.randomBytes(2, MIB);
        disk().write(7 * MIB, ByteBuffer.wrap(b), 0);
        assertEquals(JobStatus.CONCLUDED, resync.await(60_000), resync.error());
        String children = ControlTree.build(ControlTreeProvider.load(), new ControlContext(stack, ExportGuard.NONE),
                new LastErrors()).files().get("nodes/q0/children").read();
        assertTrue(children.contains("children.1 new1 in-sync"), children);
        disk().flush();
        assertArrayEquals(a, read(0, 6 * MIB));
        assertTrue(Files.readString(config).contains("\"children\" : [ \"img0\", \"new1\", \"img2\" ]"),
                Files.readString(config));
        stack.close();
        stack = null;
        run("qemu-img", "compare", "-q", dir.resolve("c0.qcow2").toString(), dir.resolve("new1.qcow2").toString())
                .ok();
        run("qemu-img", "compare", "-q", dir.resolve("c2.qcow2").toString(), dir.resolve("new1.qcow2").toString())
                .ok();
        open();
        assertArrayEquals(b, read(7 * MIB, MIB), "after a remount too");
    }

    /** A mount stopped during a resync: the config says the child is out of sync, and the next mount resumes it. */
    @Test
    void aResyncCutShortByAnUnmountGoesOnAtTheNextMount() throws Exception {
        byte[] a = TestGraphs.randomBytes(5, 8 * MIB);
        disk().write(0, ByteBuffer.wrap(a), 0);
        disk().flush();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("new1.qcow2").toString(), "8M").ok();
        edits.blockdevAdd("driver=qcow2,node-name=new1,file.driver=file,file.filename=new1.qcow2");
        edits.blockdevReplace("parent=q0,child=children.1,new-child=new1");
        stack.close(); // cancels the resync, wherever it was
        stack = null;
        assertTrue(Files.readString(config).contains("\"out-of-sync\" : [ \"children.1\" ]"), Files.readString(config));
        open();
        BlockJob resync = stack.jobs().get("resync-q0");
        assertNotNull(resync, "the mount resumed the resync");
        assertEquals(JobStatus.CONCLUDED, resync.await(60_000), resync.error());
        assertFalse(Files.readString(config).contains("out-of-sync"), "recorded as in sync again");
        assertArrayEquals(a, read(0, 8 * MIB));
        stack.close();
        stack = null;
        run("qemu-img", "compare", "-q", dir.resolve("c0.qcow2").toString(), dir.resolve("new1.qcow2").toString())
                .ok();
    }

    @Test
    void aResyncNeverCopiesFromAChildThatDisagrees() throws Exception {
        stack.close();
        Files.writeString(config, Files.readString(config).replace("\"children\": [\"img0\", \"dead1\", \"img2\"]",
                "\"children\": [\"img0\", \"img1\", \"img2\", \"img3\"]").replace("\"vote-threshold\": 2",
                "\"vote-threshold\": 2").replace("{\"driver\": \"qcow2\", \"node-name\": \"img2\"",
                "{\"driver\": \"qcow2\", \"node-name\": \"img3\", \"file\": {\"driver\": \"file\", \"filename\": "
                        + "\"c3.qcow2\"}},\n{\"driver\": \"qcow2\", \"node-name\": \"img2\""));
        open();
        byte[] a = TestGraphs.randomBytes(3, 2 * MIB);
        disk().write(0, ByteBuffer.wrap(a), 0);
        disk().flush();
        stack.close();
        // img2 disagrees at 1 MiB: the two others agree and outvote it
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x66 1M 64k", dir.resolve("c2.qcow2").toString()).ok();
        run("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("new3.qcow2").toString(), "8M").ok();
        open();
        edits.blockdevAdd("{\"driver\": \"qcow2\", \"node-name\": \"new3\", \"file\": {\"driver\": \"file\", "
                + "\"filename\": \"new3.qcow2\"}}");
        edits.blockdevReplace("parent=q0,child=children.3,new-child=new3");
        BlockJob resync = stack.jobs().get("resync-q0");
        assertEquals(JobStatus.CONCLUDED, resync.await(60_000), resync.error());
        stack.close();
        stack = null;
        run("qemu-img", "compare", "-q", dir.resolve("c0.qcow2").toString(), dir.resolve("new3.qcow2").toString())
                .ok();
        assertEquals(1, run("qemu-img", "compare", "-q", dir.resolve("c2.qcow2").toString(),
                dir.resolve("new3.qcow2").toString()).exitCode(), "the new child did not copy the odd one out");
    }

    @Test
    void addAndDeleteQuorumChildren() throws Exception {
        byte[] a = TestGraphs.randomBytes(4, MIB);
        disk().write(0, ByteBuffer.wrap(a), 0);
        edits.blockdevAdd("driver=qcow2,node-name=img3,file.driver=file,file.filename=c3.qcow2");
        edits.addChild("q0", "node=img3");
        assertEquals(JobStatus.CONCLUDED, stack.jobs().get("resync-q0").await(60_000));
        edits.delChild("q0", "child=children.1");
        assertArrayEquals(a, read(0, MIB));
        assertTrue(Files.readString(config).contains("\"children\" : [ \"img0\", \"img2\", \"img3\" ]"),
                Files.readString(config));
        edits.delChild("q0", "child=children.0");
        refused(Errno.EBUSY, "quorum 'q0': without children.2 ('img2') only 1 children in sync would remain",
                () -> edits.delChild("q0", "child=children.2"));
        assertArrayEquals(a, read(0, MIB));
    }

    @Test
    void aFilterGoesInAboveADiskAndComesOutAgainAndARemountKeepsIt() throws Exception {
        edits.objectAdd("qom-type=throttle-group,id=tg1,limits.bps-total=1M");
        edits.blockdevAdd("driver=throttle,node-name=t1,throttle-group=tg1,file=t0");
        edits.blockdevReplace("export=disk0,new-child=t1");
        assertEquals("t1", disk().rootNode().nodeName());
        stack.close();
        open();
        assertEquals("t1", disk().rootNode().nodeName(), "recorded");
        refused(Errno.EBUSY, "object 'tg1' is in use by node 't1'", () -> edits.objectDel("tg1"));
        edits.blockdevReplace("export=disk0,new-child=t0");
        edits.blockdevDel("t1");
        edits.objectDel("tg1");
        stack.close();
        open();
        assertEquals("t0", disk().rootNode().nodeName());
        assertNull(stack.graph().node("t1"));
        assertFalse(stack.objects().byId().containsKey("tg1"));
    }

    @Test
    void reopenChangesWhatANodeMayChangeAndRefusesTheRest() throws Exception {
        edits.objectAdd("{\"qom-type\": \"throttle-group\", \"id\": \"tg1\"}");
        edits.blockdevReopen("node-name=t0,throttle-group=tg1");
        assertTrue(Files.readString(config).contains("\"throttle-group\" : \"tg1\""));
        edits.blockdevReopen("node-name=img0,detect-zeroes=on");
        String before = Files.readString(config);
        refused(Errno.EINVAL, "blockdev 'img0' (qcow2): 'file' cannot change while the node is open",
                () -> edits.blockdevReopen("node-name=img0,file=img1"));
        refused(Errno.EINVAL, "blockdev 'q0' (quorum): a reopen would lose",
                () -> edits.blockdevReopen("node-name=q0,read-only=on"));
        assertEquals(before, Files.readString(config));
    }

    /** Each refused edit: its errno, a one-line message, and the config byte-equal. */
    @Test
    void badEditsAreRefusedAndChangeNothing() throws Exception {
        String before = Files.readString(config);
        List<String> nodes = stack.graph().nodes().stream().map(n -> n.nodeName()).toList();
        refused(Errno.ENOENT, "'new-child' names no node 'nope'",
                () -> edits.blockdevReplace("parent=q0,child=children.1,new-child=nope"));
        refused(Errno.ENOENT, "node 'q0' has no child 'children.7'",
                () -> edits.blockdevReplace("parent=q0,child=children.7,new-child=img0"));
        refused(Errno.ENOENT, "no export 'disk9'", () -> edits.blockdevReplace("export=disk9,new-child=img0"));
        refused(Errno.EINVAL, "would make a cycle", () -> edits.blockdevReplace("parent=t0,child=file,new-child=t0"));
        edits.blockdevAdd("driver=qcow2,node-name=small,file.driver=file,file.filename=small.qcow2");
        String withSmall = Files.readString(config);
        refused(Errno.EINVAL, "blockdev-replace: node 'small' is 4194304 bytes",
                () -> edits.blockdevReplace("export=disk0,new-child=small"), true);
        refused(Errno.EINVAL, "node 'img0' does not show what 't0' shows",
                () -> edits.blockdevReplace("export=disk0,new-child=img0"), true);
        refused(Errno.EBUSY, "node 'img0' is in use by blockdev 'q0'", () -> edits.blockdevDel("img0"));
        refused(Errno.EBUSY, "object 'tg0' is in use by node 't0'", () -> edits.objectDel("tg0"));
        refused(Errno.EINVAL, "blockdev 'x' (throttle): 'throttle-group' refers to unknown object 'tg9'",
                () -> edits.blockdevAdd("driver=throttle,node-name=x,throttle-group=tg9,file=img0"));
        refused(Errno.EEXIST, "blockdev 'img0': duplicate node-name",
                () -> edits.blockdevAdd("driver=raw,node-name=img0,file=img1"));
        refused(Errno.ENOENT, "no export 'disk9'", () -> edits.exportDel("disk9"));
        refused(Errno.EBUSY, "export 'disk0' is the mount's last disk", () -> edits.exportDel("disk0"));
        refused(Errno.EINVAL, "arguments: unknown option 'colour'", () -> edits.blockdevDel("node-name=small,colour=red"));
        assertEquals(withSmall, Files.readString(config));
        edits.blockdevDel("small");
        assertEquals(before.replaceAll("\\s", ""), Files.readString(config).replaceAll("\\s", ""));
        assertEquals(nodes, stack.graph().nodes().stream().map(n -> n.nodeName()).toList());
    }

    @Test
    void exportsComeAndGo() throws Exception {
        edits.exportAdd("id=disk1,node-name=img0");
        assertNotNull(stack.graph().backend("disk1"));
        refused(Errno.EINVAL, "export 'graph': 'id' is not a valid export id",
                () -> edits.exportAdd("id=graph,node-name=img0"));
        refused(Errno.EINVAL, "export 'n1': no nbd server runs in this mount",
                () -> edits.exportAdd("type=nbd,id=n1,node-name=img0,name=vol"));
        refused(Errno.EINVAL, "export 'n1': unknown option 'owner'",
                () -> edits.exportAdd("type=nbd,id=n1,node-name=img0,owner=root"));
        stack.close();
        open();
        assertFalse(stack.graph().backend("disk1").isWritable(), "read-only unless writable=on");
        edits.exportDel("id=disk1");
        assertNull(stack.graph().backend("disk1"));
        assertFalse(Files.readString(config).contains("disk1"));
    }

    private interface Command {
        void run() throws Exception;
    }

    private static void refused(Errno errno, String message, Command command) {
        refused(errno, message, command, false);
    }

    private static void refused(Errno errno, String message, Command command, boolean anywhere) {
        Exception e = assertThrows(Exception.class, command::run);
        Errno got = e instanceof BlockIOException b ? b.errno() : e instanceof ConfigException c ? c.errno() : null;
        assertEquals(errno, got, e.toString());
        String text = e.getMessage();
        assertTrue(anywhere ? text.contains(message.replace("blockdev-replace: ", "")) : text.startsWith(message)
                || text.contains(message), text);
        assertFalse(text.contains("\n"));
    }
}
