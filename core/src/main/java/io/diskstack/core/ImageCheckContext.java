package io.diskstack.core;

import io.diskstack.core.objects.ObjectRegistry;
import io.diskstack.core.options.NodeOptions;
import java.nio.file.Path;

/**
 * What {@link BlockDriver#check} gets ({@code diskstack check}, as {@code qemu-img check}).
 *
 * @param file    the image file, or null for a driver that names its files in {@code options}
 *                ({@link BlockDriver#namesFilesInOptions()})
 * @param options the {@code -o} options (consume them; the caller rejects leftovers)
 * @param repair  what to repair
 * @param objects secrets and other objects given with {@code --object}
 * @param drivers  the drivers, to open the image and its children
 * @param progress told how far the check is ({@code -p})
 */
public record ImageCheckContext(Path file, NodeOptions options, Repair repair, ObjectRegistry objects,
                                DriverRegistry drivers, Progress progress) {
    public ImageCheckContext(Path file, NodeOptions options, Repair repair, ObjectRegistry objects,
                             DriverRegistry drivers) {
        this(file, options, repair, objects, drivers, Progress.NONE);
    }

    /** What to repair, as {@code qemu-img check -r leaks|all}. */
    public enum Repair { NONE, LEAKS, ALL }

    /**
     * What a check found, for the image as it is after any repair.
     *
     * @param image            how messages name the image
     * @param corruptions      errors left: data may be wrong, or writes may make it wrong
     * @param leaks            units (clusters, blocks) in use by nothing, left
     * @param checkErrors      what kept the check from completing
     * @param corruptionsFixed errors this run repaired
     * @param leaksFixed       leaks this run repaired
     * @param problems         one line per problem found (the first ones), repaired or not
     * @param allocated        units in use
     * @param total            units of the virtual disk
     * @param unit             what a unit is, for the summary lines: {@code clusters}, {@code blocks}
     */
    public record Report(String image, long corruptions, long leaks, long checkErrors, long corruptionsFixed,
                         long leaksFixed, java.util.List<String> problems, long allocated, long total, String unit) {
        public boolean isClean() {
            return corruptions == 0 && leaks == 0 && checkErrors == 0;
        }
    }
}
