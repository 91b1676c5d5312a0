package io.diskstack.filters.throttle;

import static io.diskstack.core.testing.TestGraphs.opts;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.diskstack.core.ConfigException;
import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.KeyVal;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** throttle-group options: QEMU's names, and one-line errors naming object and key. */
class ThrottleLimitsTest {
    private static ThrottleGroup create(Map<String, Object> flat) {
        return (ThrottleGroup) ObjectRegistry.load().create(flat, Path.of("."));
    }

    private static String error(String keyval) {
        return assertThrows(ConfigException.class, () -> create(KeyVal.parse(keyval, "qom-type"))).getMessage();
    }

    @Test
    void readsNestedLimitsAndQemuAliases() {
        ThrottleGroup g = create(opts("qom-type", "throttle-group", "id", "tg0",
                "limits", Map.of("bps-total", 1048576L, "bps-total-max", "2M", "iops-read", 30L)));
        assertEquals(1 << 20, g.limits().get("bps-total"));
        assertEquals(2 << 20, g.limits().get("bps-total-max"));
        assertEquals(30, g.limits().get("iops-read"));
        assertEquals(1, g.limits().get("bps-total-max-length"));
        ThrottleGroup x = create(KeyVal.parse("throttle-group,id=tg1,x-bps-write=1000,limits.iops-total=5",
                "qom-type"));
        assertEquals(1000, x.limits().get("bps-write"));
        assertEquals(5, x.limits().get("iops-total"));
        assertEquals("throttle-groups/tg1", x.controlFolder());
    }

    @Test
    void badLimitsNameObjectAndKey() {
        assertEquals("object 'tg0' (throttle-group): 'limits.bps-total' value '-1' is not a size",
                error("throttle-group,id=tg0,limits.bps-total=-1"));
        assertEquals("object 'tg0' (throttle-group): 'limits.bps-total' value '12x' is not a size",
                error("throttle-group,id=tg0,limits.bps-total=12x"));
        assertEquals("object 'tg0' (throttle-group): 'limits.iops-total' value -5 is out of range [0, 1000000000000000]",
                error("throttle-group,id=tg0,limits.iops-total=-5"));
        assertEquals("object 'tg0' (throttle-group): 'limits.bps-total-max' value 50 is lower than "
                + "'limits.bps-total' 100", error("throttle-group,id=tg0,limits.bps-total=100,limits.bps-total-max=50"));
        assertEquals("object 'tg0' (throttle-group): 'x-iops-write-max' needs 'limits.iops-write' to be set too",
                error("throttle-group,id=tg0,x-iops-write-max=50"));
        assertEquals("object 'tg0' (throttle-group): 'limits.bps-read' cannot be used together with "
                + "'limits.bps-total'", error("throttle-group,id=tg0,limits.bps-total=100,limits.bps-read=5"));
        assertEquals("object 'tg0' (throttle-group): 'limits.bps-total-max-length' value 0 is out of range [1, 1000000000000000]",
                error("throttle-group,id=tg0,limits.bps-total=100,limits.bps-total-max=200,"
                        + "limits.bps-total-max-length=0"));
        assertEquals("object 'tg0' (throttle-group): 'limits.bps-total-max-length' needs 'limits.bps-total-max' "
                + "to be set too", error("throttle-group,id=tg0,limits.bps-total=100,limits.bps-total-max-length=5"));
        assertEquals("object 'tg0' (throttle-group): 'limits.iops-size' needs an iops limit to be set too",
                error("throttle-group,id=tg0,limits.iops-size=4096"));
        assertEquals("object 'tg0' (throttle-group): 'limits.bps-total' value 1000000000000001 is out of range "
                + "[0, 1000000000000000]", error("throttle-group,id=tg0,limits.bps-total=1000000000000001"));
        assertEquals("object 'tg0' (throttle-group): 'x-bps-total' and 'limits.bps-total' set the same limit: "
                + "give one", error("throttle-group,id=tg0,limits.bps-total=1,x-bps-total=2"));
        assertEquals("object 'tg0' (throttle-group): unknown option 'limits.bps-totl'",
                error("throttle-group,id=tg0,limits.bps-totl=1"));
    }
}
