package io.diskstack.core.control;

import java.util.Map;

/**
 * Something that shows control files in the mount. Objects (a throttle group) implement it to
 * appear under {@code MNT/.control/FOLDER/}; the folder is theirs to name, such as
 * {@code throttle-groups/tg0}. Nodes implement it to appear under
 * {@code MNT/.control/nodes/NODE-NAME/} ({@link NodeControlFiles}, {@link ObjectControlFiles}).
 */
public interface ControlProvider {
    /** The folder below {@code .control} for an object; ignored for nodes. */
    default String controlFolder() {
        return null;
    }

    /**
     * File name → file. Asked again when the mount rebuilds its control tree (after a graph or
     * object change), so the names must stay the same until then; contents may change any time.
     */
    Map<String, ControlFile> controlFiles();
}
