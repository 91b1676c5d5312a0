package io.diskstack.formats.qcow2;

/**
 * A problem with an image's content found while opening or checking it. The message is a
 * predicate about the image ("has an L1 table … past the end of the file"); the driver puts the
 * node and file name in front and turns it into a ConfigException.
 */
final class Qcow2Exception extends RuntimeException {
    Qcow2Exception(String message) {
        super(message);
    }
}
