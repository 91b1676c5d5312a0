package io.diskstack.core;

/**
 * Where long work (preallocating an image, checking one) reports how far it is, for a progress
 * bar ({@code -p}). Called from the working thread; {@code done} never goes back.
 */
@FunctionalInterface
public interface Progress {
    /** Nobody is watching. */
    Progress NONE = (done, total) -> {};

    void update(long done, long total);
}
