package io.diskstack.fuse;

import io.diskstack.core.BlockBackend;
import io.diskstack.core.ConfigException;
import io.diskstack.core.config.Stack;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import sun.misc.Signal;

/**
 * One mount's life: mount, serve until {@code fusermount -u} or SIGINT/SIGTERM/SIGHUP, then
 * unmount, drain every backend, flush and close the graph.
 */
final class FuseMount {
    private static final Logger LOG = Logger.getLogger(FuseMount.class.getName());
    /**
     * libfuse2 caps requests at 128 KiB; without big_writes the loop device sends 4 KiB writes.
     * auto_unmount has fusermount remove the mount if we die (kill -9), instead of leaving a dead one.
     */
    static final String FUSE_OPTIONS = "fsname=diskstack,subtype=diskstack,big_writes,max_write=131072,"
            + "max_read=1048576,default_permissions,auto_unmount";

    private final Stack stack;
    private final Path mountpoint;
    private final boolean directIo;
    private final List<String> extraOptions;
    /** Another front end serving the same stack (the NBD server), stopped before the disks close; or null. */
    private final AutoCloseable alsoServing;
    private final CountDownLatch finished = new CountDownLatch(1);
    private final CountDownLatch mounted = new CountDownLatch(1);
    private volatile Throwable mountFailure;

    FuseMount(Stack stack, Path mountpoint, boolean directIo, List<String> extraOptions) {
        this(stack, mountpoint, directIo, extraOptions, null);
    }

    FuseMount(Stack stack, Path mountpoint, boolean directIo, List<String> extraOptions, AutoCloseable alsoServing) {
        this.alsoServing = alsoServing;
        this.stack = stack;
        this.mountpoint = mountpoint.toAbsolutePath().normalize();
        this.directIo = directIo;
        this.extraOptions = extraOptions;
    }

    /** Checks the mountpoint before anything is opened or created: a folder, empty, or absent. */
    static void checkMountpoint(Path mountpoint) {
        if (!Files.exists(mountpoint, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            if (Files.isSymbolicLink(mountpoint)) {
                throw new ConfigException("mountpoint '" + mountpoint + "' is a dangling symbolic link");
            }
            try {
                Files.readAttributes(mountpoint, "basic:isDirectory");
            } catch (java.nio.file.NoSuchFileException e) {
                return;
            } catch (IOException e) {
                throw new ConfigException("mountpoint '" + mountpoint + "' cannot be used (" + e.getMessage()
                        + "); if a diskstack died there, run: fusermount -u " + mountpoint);
            }
            return;
        }
        if (!Files.isDirectory(mountpoint)) {
            throw new ConfigException("mountpoint '" + mountpoint + "' is not a folder");
        }
        try (var entries = Files.list(mountpoint)) {
            if (entries.findAny().isPresent()) {
                throw new ConfigException("mountpoint '" + mountpoint + "' is not empty");
            }
        } catch (IOException e) {
            throw new ConfigException("mountpoint '" + mountpoint + "' cannot be read (" + e.getMessage()
                    + "); if a diskstack died there, run: fusermount -u " + mountpoint);
        }
    }

    /** Mounts, serves until told to stop, then closes; returns the exit code. */
    int run() throws IOException, InterruptedException {
        Files.createDirectories(mountpoint);
        long uid = new com.sun.security.auth.module.UnixSystem().getUid();
        long gid = new com.sun.security.auth.module.UnixSystem().getGid();
        MountTree tree = new MountTree(stack);
        DiskstackFs fs = new DiskstackFs(tree, directIo, uid, gid);
        CountDownLatch stop = new CountDownLatch(1);
        for (String sig : List.of("TERM", "INT", "HUP")) {
            Signal.handle(new Signal(sig), s -> {
                LOG.info(() -> "SIG" + s.getName() + ": unmounting " + mountpoint);
                stop.countDown();
            });
        }
        List<String> args = new ArrayList<>(List.of("-o", FUSE_OPTIONS));
        for (String o : extraOptions) {
            args.add("-o");
            args.add(o);
        }
        Thread loop = new Thread(() -> {
            try {
                new FuseSession().run(fs.operations(), mountpoint, args, mounted::countDown);
            } catch (Throwable t) {
                mountFailure = t;
            } finally {
                finished.countDown();
                stop.countDown();
            }
        }, "fuse-loop");
        loop.start();
        if (!waitUntilMounted()) {
            Throwable t = mountFailure;
            throw new IOException("cannot mount at '" + mountpoint + "'"
                    + (t == null ? ": the mount did not appear" : ": " + t.getMessage()));
        }
        LOG.info(() -> "serving " + tree.allDisks().size() + " disk(s) at " + mountpoint);
        stop.await();
        if (finished.getCount() > 0) {
            unmount();
        }
        if (alsoServing != null) {
            try {
                alsoServing.close();
            } catch (Exception e) {
                LOG.warning("stopping " + alsoServing + ": " + e.getMessage());
            }
        }
        // Requests in flight finish (a throttle lets the ones it holds go); new ones wait until
        // the process exits, when the kernel fails them. Clients that keep a disk open (a VM)
        // are not waited for: what they had flushed is safe, as on a power cut.
        for (BlockBackend b : stack.backends()) {
            b.drain();
        }
        if (!finished.await(200, TimeUnit.MILLISECONDS)) {
            LOG.warning("files in " + mountpoint + " are still open; closing the disks under them");
        }
        tree.close();
        boolean clean = stack.closeAndReport();
        LOG.info(() -> "closed " + (clean ? "cleanly" : "with errors"));
        return clean ? 0 : 1;
    }

    /** True once libfuse has mounted (the mount may already be gone again if unmounted at once). */
    private boolean waitUntilMounted() throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (mounted.await(20, TimeUnit.MILLISECONDS)) {
                return true;
            }
            if (finished.getCount() == 0) {
                return mounted.getCount() == 0;
            }
        }
        return false;
    }

    static boolean isMounted(Path mountpoint) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
                String[] f = line.split(" ");
                if (f.length > 2 && unescape(f[1]).equals(mountpoint.toString()) && f[2].startsWith("fuse")) {
                    return true;
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    private static String unescape(String mountsField) {
        return mountsField.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\");
    }

    private void unmount() {
        try {
            Process p = new ProcessBuilder("fusermount", "-u", "-z", mountpoint.toString())
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).trim();
            if (p.waitFor() != 0 && isMounted(mountpoint)) {
                LOG.warning("fusermount -u " + mountpoint + " failed: " + out);
            }
        } catch (IOException e) {
            LOG.warning("cannot run fusermount: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
