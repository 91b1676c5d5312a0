package io.diskstack.core.control;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;

/**
 * Declares files of a mount's control tree ({@code MNT/.control}), configfs style: the tree is
 * built from what the providers declare, and a front end only maps it. Adding a control file means
 * adding a provider (listed in {@code META-INF/services/io.diskstack.core.control.ControlTreeProvider}),
 * never editing the front end.
 *
 * <p>A front end loads one instance of each provider per mount ({@link #load()}), and rebuilds
 * the tree when the graph, the objects or a provider's {@link #generation} change; so a provider
 * may keep state across rebuilds (what a command made), and files must not change their paths
 * without a generation change.
 */
public interface ControlTreeProvider {
    /**
     * The files, by path relative to {@code .control}: {@code graph}, {@code disk0/stats},
     * {@code nodes/l0/keyslots}. Each folder gets a {@code last-error} file besides.
     */
    Map<String, ControlFile> files(ControlContext context);

    /** Top-level names this provider uses or keeps free, which export ids may not take. */
    default Set<String> reservedNames() {
        return Set.of();
    }

    /**
     * A counter that changes when {@link #files} would declare other paths for a reason other than
     * a graph or object change (a job that starts or ends). Only ever grows.
     */
    default long generation(ControlContext context) {
        return 0;
    }

    /** One new instance of every provider on the class path. */
    static List<ControlTreeProvider> load() {
        List<ControlTreeProvider> out = new ArrayList<>();
        for (ControlTreeProvider p : ServiceLoader.load(ControlTreeProvider.class)) {
            out.add(p);
        }
        return out;
    }
}
