package io.diskstack.core.control;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The message of the last failed write in each control folder, for its {@code last-error} file. */
public final class LastErrors {
    private final Map<String, String> byFolder = new ConcurrentHashMap<>();

    /** Records a failure in a folder (relative to {@code .control}, {@code ""} for the top). */
    public void record(String folder, String message) {
        byFolder.put(folder, message);
    }

    /** The {@code last-error} file of a folder: the message and a newline, or empty. */
    ControlFile file(String folder) {
        return ControlFile.readOnly(() -> {
            String message = byFolder.get(folder);
            return message == null ? "" : message + "\n";
        });
    }
}
