package io.diskstack.formats.dedup;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/** Big-endian fields in byte arrays, as the format stores them (FORMAT.md). */
final class Bytes {
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.BIG_ENDIAN);

    private Bytes() {}

    static int u16(byte[] b, int off) {
        return ((b[off] & 0xff) << 8) | (b[off + 1] & 0xff);
    }

    static void putU16(byte[] b, int off, int v) {
        b[off] = (byte) (v >>> 8);
        b[off + 1] = (byte) v;
    }

    static long u32(byte[] b, int off) {
        return (int) INT.get(b, off) & 0xffff_ffffL;
    }

    static void putU32(byte[] b, int off, long v) {
        INT.set(b, off, (int) v);
    }

    static long u40(byte[] b, int off) {
        return ((long) (b[off] & 0xff) << 32) | u32(b, off + 1);
    }

    static void putU40(byte[] b, int off, long v) {
        b[off] = (byte) (v >>> 32);
        putU32(b, off + 1, v);
    }

    static long u64(byte[] b, int off) {
        return (long) LONG.get(b, off);
    }

    static void putU64(byte[] b, int off, long v) {
        LONG.set(b, off, v);
    }

    static int crc32c(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return (int) c.getValue();
    }
}
