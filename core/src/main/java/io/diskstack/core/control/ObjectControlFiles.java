package io.diskstack.core.control;

import io.diskstack.core.objects.ObjectRegistry;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code .control/FOLDER/…}: the files of every object that is a {@link ControlProvider}, in the
 * folder it names ({@code throttle-groups/tg0/bps-total}).
 */
public final class ObjectControlFiles implements ControlTreeProvider {
    @Override
    public Map<String, ControlFile> files(ControlContext context) {
        Map<String, ControlFile> files = new LinkedHashMap<>();
        for (Object o : context.stack().objects().byId().values()) {
            if (o instanceof ControlProvider p && p.controlFolder() != null) {
                p.controlFiles().forEach((name, file) -> files.put(p.controlFolder() + "/" + name, file));
            }
        }
        return files;
    }

    /** {@code objects}, and the folder of each object type that shows files ({@code throttle-groups}). */
    @Override
    public Set<String> reservedNames() {
        Set<String> names = new TreeSet<>(Set.of("objects"));
        try (ObjectRegistry types = ObjectRegistry.load()) {
            names.addAll(types.controlFolders());
        }
        return names;
    }
}
