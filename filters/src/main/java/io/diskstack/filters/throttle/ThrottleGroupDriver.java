package io.diskstack.filters.throttle;

import io.diskstack.core.objects.ObjectDriver;
import io.diskstack.core.options.NodeOptions;
import java.nio.file.Path;

/**
 * {@code --object throttle-group,id=tg0,limits.bps-total=10485760} or
 * {@code {"qom-type": "throttle-group", "id": "tg0", "limits": {"bps-total": 10485760}}}, with
 * QEMU's limit names; QEMU's {@code x-bps-total}-style aliases work too. Byte rates may also be
 * written as sizes ({@code 10M}).
 */
public final class ThrottleGroupDriver implements ObjectDriver {
    @Override
    public String qomType() {
        return "throttle-group";
    }

    @Override
    public Object create(String id, NodeOptions options, Path baseDir) {
        return new ThrottleGroup(id, ThrottleLimits.read(options));
    }

    @Override
    public String controlFolder() {
        return ThrottleGroup.CONTROL_FOLDER;
    }
}
