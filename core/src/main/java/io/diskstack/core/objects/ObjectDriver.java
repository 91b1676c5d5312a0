package io.diskstack.core.objects;

import io.diskstack.core.options.NodeOptions;
import java.nio.file.Path;

/**
 * Creates user-creatable objects ({@code --object TYPE,id=…}, QEMU's qom-type): secrets,
 * throttle groups. Found through {@link java.util.ServiceLoader}. An object that holds
 * resources or key material implements {@link AutoCloseable}; the registry closes it.
 */
public interface ObjectDriver {
    /** The {@code qom-type}: {@code secret}, {@code throttle-group}, … */
    String qomType();

    /**
     * @param id      the object's id
     * @param options its other options (consume them; leftovers are rejected)
     * @param baseDir the folder relative file names resolve against
     */
    Object create(String id, NodeOptions options, Path baseDir);

    /**
     * The folder below {@code MNT/.control} that this type's objects put their own folders in
     * ({@code throttle-groups}), or null if they show none. Export ids may not take it.
     */
    default String controlFolder() {
        return null;
    }
}
