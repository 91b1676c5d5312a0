package io.diskstack.core.job;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.BlockNode;
import io.diskstack.core.config.Stack;
import io.diskstack.core.control.ControlFile;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The job control files of a mount, by path below {@code .control}: {@code DISK/commit},
 * {@code DISK/stream}, {@code DISK/backup}, {@code nodes/NODE/mirror}, and for every job
 * {@code jobs/ID/type|status|progress|speed|error|action}.
 */
public final class JobControls {
    private final Stack stack;
    private final JobCommands commands;

    public JobControls(Stack stack, JobCommands commands) {
        this.stack = stack;
        this.commands = commands;
    }

    public JobCommands commands() {
        return commands;
    }

    /** Path below {@code .control} → file, as the graph and the jobs are now. */
    public Map<String, ControlFile> files() {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (BlockBackend b : stack.graph().backends()) {
            String d = b.name() + "/";
            files.put(d + "commit", command("NAME | top=NODE base=NODE [speed=BYTES/S] [job-id=ID] [delete=on] "
                    + "[pivot=off]", text -> commands.commit(b.name(), text)));
            files.put(d + "stream", command("NAME [base=NODE] [speed=BYTES/S] [job-id=ID]",
                    text -> commands.stream(b.name(), text)));
            files.put(d + "backup", command("target=PATH format=FORMAT [encrypt=SECRET-ID] [speed=BYTES/S] "
                    + "[job-id=ID]", text -> commands.backup(b.name(), text)));
        }
        for (BlockNode n : stack.graph().nodes()) {
            if (!n.nodeName().startsWith("#")) {
                files.put("nodes/" + n.nodeName() + "/mirror", command("target=PATH format=FORMAT [node-name=NAME] "
                        + "[speed=BYTES/S] [job-id=ID] [pivot=off]", text -> commands.mirror(n.nodeName(), text)));
            }
        }
        for (BlockJob j : commands.jobs().list()) {
            String d = "jobs/" + j.id() + "/";
            files.put(d + "type", ControlFile.readOnly(() -> j.type() + "\n"));
            files.put(d + "status", ControlFile.readOnly(() -> j.status().qemuName() + "\n"));
            files.put(d + "progress", ControlFile.readOnly(() -> j.progress() + "\n"));
            files.put(d + "error", ControlFile.readOnly(() -> j.error().isEmpty() ? "" : j.error() + "\n"));
            files.put(d + "speed", command(null, text -> commands.speed(j.id(), text), () -> j.speed() + "\n"));
            files.put(d + "action", command("pause | resume | cancel | complete", text -> commands.action(j.id(), text)));
        }
        return files;
    }

    private interface Command {
        void run(String text) throws IOException;
    }

    private static ControlFile command(String usage, Command command) {
        return command(usage, command, () -> usage + "\n");
    }

    private static ControlFile command(String usage, Command command, java.util.function.Supplier<String> read) {
        return new ControlFile() {
            @Override
            public String read() {
                return read.get();
            }

            @Override
            public boolean isWritable() {
                return true;
            }

            @Override
            public void write(String text) throws IOException {
                command.run(text);
            }
        };
    }
}
