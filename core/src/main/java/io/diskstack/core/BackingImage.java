package io.diskstack.core;

import java.nio.file.Path;

/**
 * How an overlay names the image below it (what {@code qemu-img create -b FILE -F FORMAT} would
 * record): the backing file, its format, and the folder an overlay goes to by default.
 *
 * @param filename the backing file as a qcow2 header records it (an absolute path, or a URL)
 * @param format   its format ({@code raw}, {@code qcow2}, …)
 * @param folder   where overlays go beside it, or null if it is not a local file: the command
 *                 must then say where
 */
public record BackingImage(String filename, String format, Path folder) {}
