package io.diskstack.formats.dedup;

/**
 * A child that is not, or no longer, a usable part of this dedup device: the message says which
 * child and why ({@code metadata child 'm.img' is too small: ...}); the driver prefixes the node.
 */
final class DedupException extends RuntimeException {
    DedupException(String message) {
        super(message);
    }
}
