package io.diskstack.formats.dedup;

import java.util.Arrays;

/**
 * Block number → count, without boxing: the holds that writes in flight keep on blocks (each
 * block of a write is held and released once, on the hot path). Open addressing with linear
 * probing and backward-shift deletion; grows when half full. Under the node's metadata lock.
 */
final class BlockHolds {
    private long[] keys = new long[1024];
    private int[] counts = new int[1024];
    private int size;

    BlockHolds() {
        Arrays.fill(keys, -1);
    }

    private int slot(long p) {
        return (int) (p * 0x9E3779B97F4A7C15L >>> 40) & (keys.length - 1);
    }

    int get(long p) {
        for (int i = slot(p); ; i = (i + 1) & (keys.length - 1)) {
            if (keys[i] == p) {
                return counts[i];
            }
            if (keys[i] == -1) {
                return 0;
            }
        }
    }

    void add(long p) {
        if (2 * (size + 1) > keys.length) {
            grow();
        }
        int i = slot(p);
        while (keys[i] != -1 && keys[i] != p) {
            i = (i + 1) & (keys.length - 1);
        }
        if (keys[i] == -1) {
            keys[i] = p;
            size++;
        }
        counts[i]++;
    }

    void remove(long p) {
        int i = slot(p);
        while (keys[i] != p) {
            if (keys[i] == -1) {
                return;
            }
            i = (i + 1) & (keys.length - 1);
        }
        if (--counts[i] > 0) {
            return;
        }
        size--;
        // backward shift: move later entries of the run into the hole if their slot allows it
        int hole = i;
        for (int j = (i + 1) & (keys.length - 1); keys[j] != -1; j = (j + 1) & (keys.length - 1)) {
            int home = slot(keys[j]);
            if (((j - home) & (keys.length - 1)) >= ((j - hole) & (keys.length - 1))) {
                keys[hole] = keys[j];
                counts[hole] = counts[j];
                hole = j;
            }
        }
        keys[hole] = -1;
        counts[hole] = 0;
    }

    private void grow() {
        long[] oldKeys = keys;
        int[] oldCounts = counts;
        keys = new long[oldKeys.length * 2];
        counts = new int[oldKeys.length * 2];
        Arrays.fill(keys, -1);
        size = 0;
        for (int i = 0; i < oldKeys.length; i++) {
            if (oldKeys[i] != -1) {
                int j = slot(oldKeys[i]);
                while (keys[j] != -1) {
                    j = (j + 1) & (keys.length - 1);
                }
                keys[j] = oldKeys[i];
                counts[j] = oldCounts[i];
                size++;
            }
        }
    }
}
