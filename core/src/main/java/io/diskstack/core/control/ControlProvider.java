package io.diskstack.core.control;

import java.util.Map;

/**
 * Something that shows control files in the mount. Objects (a throttle group) implement it to
 * appear under {@code MNT/.control/FOLDER/}; the folder is theirs to name, such as
 * {@code throttle-groups/tg0}. Nodes implement it to appear under
 * {@code MNT/.control/nodes/NODE-NAME/}.
 */
public interface ControlProvider {
    /** The folder below {@code .control} for an object; ignored for nodes. */
    default String controlFolder() {
        return null;
    }

    /** File name → file. The map may change between calls (a new child, a new key slot). */
    Map<String, ControlFile> controlFiles();
}
