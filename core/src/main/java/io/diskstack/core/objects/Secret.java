package io.diskstack.core.objects;

import java.util.Arrays;

/**
 * A {@code secret} object: key material given by {@code data} or {@code file}. Its bytes never
 * appear in messages, logs or the graph view, and are wiped on close.
 */
public final class Secret implements AutoCloseable {
    private final String id;
    private final byte[] value;

    public Secret(String id, byte[] value) {
        this.id = id;
        this.value = value.clone();
    }

    public String id() {
        return id;
    }

    /** A copy of the secret's bytes; wipe it ({@code Arrays.fill(b, (byte) 0)}) when done. */
    public synchronized byte[] bytes() {
        return value.clone();
    }

    @Override
    public synchronized void close() {
        Arrays.fill(value, (byte) 0);
    }

    @Override
    public String toString() {
        return "secret '" + id + "'";
    }
}
