package io.diskstack.filters.blkdebug;

import io.diskstack.core.Errno;
import io.diskstack.core.options.NodeOptions;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One blkdebug rule: which requests it matches (I/O type, byte range, every Nth) and what it
 * does to them (fail with an errno, delay, corrupt read data).
 */
final class InjectionRule {
    enum IoType { READ, WRITE, WRITE_ZEROES, DISCARD, FLUSH, BLOCK_STATUS }

    enum Action { ERROR, DELAY, CORRUPT }

    final Action action;
    final Set<IoType> ioTypes;
    final long offset;
    final long length;
    final long every;
    final boolean once;
    final Errno errno;
    final long delayMillis;
    private final AtomicLong matches = new AtomicLong();
    private final AtomicBoolean spent = new AtomicBoolean();

    private InjectionRule(Action action, Set<IoType> ioTypes, long offset, long length, long every, boolean once,
                          Errno errno, long delayMillis) {
        this.action = action;
        this.ioTypes = ioTypes;
        this.offset = offset;
        this.length = length;
        this.every = every;
        this.once = once;
        this.errno = errno;
        this.delayMillis = delayMillis;
    }

    /**
     * Reads a rule from flat options. {@code sector} (QEMU's, 512-byte units) or {@code offset}
     * plus {@code length} (bytes) limit the range; {@code every} fires on every Nth match.
     */
    static InjectionRule parse(Action action, String owner, Map<String, Object> flat) {
        NodeOptions o = new NodeOptions(owner, flat);
        Set<IoType> types;
        String iotype = o.optString("iotype", null);
        if (iotype == null) {
            types = action == Action.CORRUPT ? EnumSet.of(IoType.READ) : EnumSet.allOf(IoType.class);
        } else {
            types = EnumSet.noneOf(IoType.class);
            for (String t : iotype.split("[+ ]")) {
                try {
                    types.add(IoType.valueOf(t.toUpperCase(Locale.ROOT).replace('-', '_')));
                } catch (IllegalArgumentException e) {
                    throw o.error("iotype", "value '" + t + "' is not one of read, write, write-zeroes, "
                            + "discard, flush, block-status");
                }
            }
        }
        long sector = o.optLong("sector", -1, -1, Long.MAX_VALUE / 512);
        long offset = o.optSize("offset", sector >= 0 ? sector * 512 : 0);
        long length = o.optSize("length", sector >= 0 ? 512 : Long.MAX_VALUE - offset);
        long every = o.optLong("every", 1, 1, Long.MAX_VALUE);
        boolean once = o.optBool("once", false);
        Errno errno = Errno.EIO;
        long delay = 0;
        if (action == Action.ERROR) {
            errno = parseErrno(o);
        } else if (action == Action.DELAY) {
            delay = o.optLong("ms", 0, 0, 3_600_000);
        }
        o.assertAllConsumed();
        return new InjectionRule(action, types, offset, length, every, once, errno, delay);
    }

    private static Errno parseErrno(NodeOptions o) {
        String v = o.optString("errno", "5");
        for (Errno e : Errno.values()) {
            if (e.name().equalsIgnoreCase(v) || Integer.toString(e.code()).equals(v)) {
                return e;
            }
        }
        throw o.error("errno", "value '" + v + "' is not a known errno (such as 5 or EIO)");
    }

    /** True if this request triggers the rule (and counts it); a once-rule for one request only, even under races. */
    boolean fires(IoType type, long reqOffset, long reqLength) {
        if (spent.get() || !ioTypes.contains(type)) {
            return false;
        }
        boolean overlaps = type == IoType.FLUSH
                || (reqOffset < offset + length && offset < reqOffset + Math.max(reqLength, 1));
        if (!overlaps) {
            return false;
        }
        if (matches.incrementAndGet() % every != 0) {
            return false;
        }
        return !once || spent.compareAndSet(false, true);
    }
}
