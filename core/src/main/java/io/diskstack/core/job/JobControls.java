package io.diskstack.core.job;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockNode;
import io.diskstack.core.config.Stack;
import io.diskstack.core.control.ControlContext;
import io.diskstack.core.control.ControlFile;
import io.diskstack.core.control.ControlTreeProvider;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The job control files of a mount, by path below {@code .control}: {@code DISK/commit},
 * {@code DISK/stream}, {@code DISK/backup}, {@code nodes/NODE/mirror}, and for every job
 * {@code jobs/ID/type|status|progress|speed|error|action}.
 */
public final class JobControls implements ControlTreeProvider {
    private JobCommands commands;

    private synchronized JobCommands commands(Stack stack) {
        if (commands == null) {
            commands = new JobCommands(stack, stack.jobs(), JobClock.SYSTEM);
        }
        return commands;
    }

    @Override
    public Set<String> reservedNames() {
        return Set.of("jobs");
    }

    /** The tree changes when a job starts or ends. */
    @Override
    public long generation(ControlContext context) {
        return context.stack().jobs().generation();
    }

    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        Stack stack = context.stack();
        JobCommands jobs = commands(stack);
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (BlockBackend b : stack.graph().backends()) {
            String d = b.name() + "/";
            files.put(d + "commit", usage("NAME | top=NODE base=NODE [speed=BYTES/S] [job-id=ID] [delete=on] [pivot=off]",
                    text -> jobs.commit(b.name(), text)));
            files.put(d + "stream", usage("NAME [base=NODE] [speed=BYTES/S] [job-id=ID]",
                    text -> jobs.stream(b.name(), text)));
            files.put(d + "backup", usage("target=PATH format=FORMAT [encrypt=SECRET-ID] [speed=BYTES/S] [job-id=ID]",
                    text -> jobs.backup(b.name(), text)));
        }
        for (BlockNode n : stack.graph().nodes()) {
            if (!n.nodeName().startsWith("#")) {
                files.put("nodes/" + n.nodeName() + "/mirror", usage("target=PATH format=FORMAT [node-name=NAME] "
                        + "[speed=BYTES/S] [job-id=ID] [pivot=off]", text -> jobs.mirror(n.nodeName(), text)));
            }
        }
        for (BlockJob j : jobs.jobs().list()) {
            String d = "jobs/" + j.id() + "/";
            files.put(d + "type", ControlFile.readOnly(() -> j.type() + "\n"));
            files.put(d + "status", ControlFile.readOnly(() -> j.status().qemuName() + "\n"));
            files.put(d + "progress", ControlFile.readOnly(() -> j.progress() + "\n"));
            files.put(d + "error", ControlFile.readOnly(() -> j.error().isEmpty() ? "" : j.error() + "\n"));
            files.put(d + "speed", ControlFile.command(() -> j.speed() + "\n", text -> jobs.speed(j.id(), text)));
            files.put(d + "action", usage("pause | resume | cancel | complete", text -> jobs.action(j.id(), text)));
        }
        return files;
    }

    private static ControlFile usage(String usage, ControlFile.Command command) {
        return ControlFile.command(() -> usage + "\n", command);
    }
}
