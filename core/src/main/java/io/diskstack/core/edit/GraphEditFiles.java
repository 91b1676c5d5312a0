package io.diskstack.core.edit;

import io.diskstack.core.BlockNode;
import io.diskstack.core.control.ControlContext;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlTreeProvider;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The live graph edits' control files, each named after its QMP command: {@code object-add},
 * {@code object-del}, {@code blockdev-add}, {@code blockdev-del}, {@code blockdev-replace},
 * {@code blockdev-reopen}, {@code block-export-add}, {@code block-export-del} at the top of
 * {@code .control}, and {@code nodes/NODE/add-child|del-child} for nodes whose children can change.
 */
public final class GraphEditFiles implements ControlTreeProvider {
    private GraphEdits edits;

    private synchronized GraphEdits edits(ControlContext context) {
        if (edits == null) {
            edits = new GraphEdits(context.stack(), context.guard());
        }
        return edits;
    }

    @Override
    public Set<String> reservedNames() {
        return Set.of("object-add", "object-del", "blockdev-add", "blockdev-del", "blockdev-replace",
                "blockdev-reopen", "block-export-add", "block-export-del");
    }

    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        GraphEdits e = edits(context);
        Map<String, ControlFile> files = new LinkedHashMap<>();
        files.put("object-add", usage("qom-type=TYPE,id=ID,… | {JSON}", e::objectAdd));
        files.put("object-del", usage("id=ID", e::objectDel));
        files.put("blockdev-add", usage("driver=DRIVER,node-name=NODE,… | {JSON}", e::blockdevAdd));
        files.put("blockdev-del", usage("node-name=NODE", e::blockdevDel));
        files.put("blockdev-replace", usage("parent=NODE,child=CHILD,new-child=NODE | export=ID,new-child=NODE "
                + "[,force=on]", e::blockdevReplace));
        files.put("blockdev-reopen", usage("node-name=NODE,OPTION=VALUE,…", e::blockdevReopen));
        files.put("block-export-add", usage("[type=fuse|nbd,]id=ID,node-name=NODE[,writable=on][,name=NBD-NAME]", e::exportAdd));
        files.put("block-export-del", usage("id=ID[,mode=safe|hard]", e::exportDel));
        for (BlockNode n : context.stack().graph().nodes()) {
            if (n.growableChildren() != null && !n.nodeName().startsWith("#")) {
                String d = "nodes/" + n.nodeName() + "/";
                files.put(d + "add-child", usage("node=NODE", text -> e.addChild(n.nodeName(), text)));
                files.put(d + "del-child", usage("child=" + n.growableChildren().key() + ".N",
                        text -> e.delChild(n.nodeName(), text)));
            }
        }
        return files;
    }

    private static ControlFile usage(String usage, ControlFile.Command command) {
        return ControlFile.command(() -> usage + "\n", command);
    }
}
