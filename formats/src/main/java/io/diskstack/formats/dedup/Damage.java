package io.diskstack.formats.dedup;

import io.diskstack.core.BlockIOException;

/** How a structure reports metadata that breaks the format's invariants: the node marks itself damaged. */
interface Damage {
    BlockIOException found(String what);
}
