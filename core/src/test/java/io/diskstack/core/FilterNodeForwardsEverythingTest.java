package io.diskstack.core;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A new BlockNode method must be forwarded by FilterNode, or filters would silently skip it. */
class FilterNodeForwardsEverythingTest {
    @Test
    void filterNodeOverridesEveryOverridableMethod() {
        List<String> missing = new ArrayList<>();
        for (Method m : BlockNode.class.getDeclaredMethods()) {
            int mod = m.getModifiers();
            if (Modifier.isStatic(mod) || Modifier.isFinal(mod) || Modifier.isPrivate(mod) || m.isSynthetic()
                    || !(Modifier.isPublic(mod) || Modifier.isProtected(mod))) {
                continue;
            }
            if (m.getName().equals("toString")) {
                continue;
            }
            try {
                FilterNode.class.getDeclaredMethod(m.getName(), m.getParameterTypes());
            } catch (NoSuchMethodException e) {
                missing.add(m.getName());
            }
        }
        assertTrue(missing.isEmpty(), "FilterNode does not override: " + missing);
    }
}
