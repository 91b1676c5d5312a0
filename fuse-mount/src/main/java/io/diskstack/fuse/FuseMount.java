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
    static final String FUSE_OPTIONS = "subtype=diskstack,big_writes,max_write=131072,"
            + "max_read=1048576,default_permissions,auto_unmount";

    private final Stack stack;
    private final Path mountpoint;
    private final boolean directIo;
    private final MountOptions options;
    private final String source;
    private final List<MountListener> listeners;
    /** Another front end serving the same stack (the NBD server), stopped before the disks close; or null. */
    private final AutoCloseable alsoServing;
    private final CountDownLatch finished = new CountDownLatch(1);
    private final CountDownLatch mounted = new CountDownLatch(1);
    private volatile Throwable mountFailure;

    /**
     * @param source      what /proc/mounts shows as the mount's source (the config file, as fstab
     *                    names it, so that {@code mount -a} sees it mounted)
     * @param listeners   told when the mount is ready, stopping and stopped
     * @param alsoServing another front end serving the same stack (the NBD server), or null
     */
    FuseMount(Stack stack, Path mountpoint, boolean directIo, MountOptions options, String source,
              List<MountListener> listeners, AutoCloseable alsoServing) {
        this.alsoServing = alsoServing;
        this.stack = stack;
        this.mountpoint = mountpoint.toAbsolutePath().normalize();
        this.directIo = directIo;
        this.options = options;
        this.source = source;
        this.listeners = List.copyOf(listeners);
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
        try {
            return serve();
        } finally {
            for (MountListener l : listeners) {
                l.stopped();
            }
        }
    }

    private int serve() throws IOException, InterruptedException {
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
        List<String> args = new ArrayList<>(List.of("-o", "fsname=" + escapeOption(source) + "," + FUSE_OPTIONS));
        for (String o : options.fuseOptions()) {
            args.add("-o");
            args.add(o);
        }
        warnIfOthersLockedOut(tree, uid);
        Thread loop = new Thread(() -> {
            try {
                new FuseSession(options.uringEntries()).run(fs.operations(), mountpoint, args, mounted::countDown);
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
        Exception notReady = null;
        try {
            // Only when someone waits for it: an unmount while this stat is on its way fails with EBUSY.
            if (!listeners.isEmpty()) {
                checkAnswers(tree);
            }
            for (MountListener l : listeners) {
                l.ready(mountpoint, tree.allDisks().size());
            }
            LOG.info(() -> "serving " + tree.allDisks().size() + " disk(s) at " + mountpoint);
        } catch (IOException | RuntimeException e) {
            notReady = e;
            stop.countDown();
        }
        stop.await();
        for (MountListener l : listeners) {
            l.stopping();
        }
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
        if (notReady != null) {
            throw new IOException("the mount at '" + mountpoint + "' did not get ready: " + notReady.getMessage(),
                    notReady);
        }
        return clean ? 0 : 1;
    }

    /** The mount answers for every disk (a stat goes through the kernel to our threads and back). */
    private void checkAnswers(MountTree tree) throws IOException {
        for (MountTree.Disk d : tree.allDisks()) {
            Files.readAttributes(mountpoint.resolve(d.backend().name()), java.nio.file.attribute.BasicFileAttributes.class);
        }
    }

    /**
     * Says why another user's QEMU could not open a disk meant for it: without allow_other the
     * kernel lets nobody but the mounting user into a FUSE mount, whatever the files' modes.
     */
    private void warnIfOthersLockedOut(MountTree tree, long uid) {
        if (options.allowsOtherUsers()) {
            return;
        }
        for (MountTree.Disk d : tree.allDisks()) {
            if (d.access().sharedBeyond(uid)) {
                LOG.warning("export '" + d.backend().name() + "' is " + d.access().describe() + ", but without "
                        + "-o allow_other the kernel lets only " + UnixUsers.name(uid) + " open files in " + mountpoint
                        + "; mount with -o allow_other" + (uid == 0 ? "" : " (for a user other than root, with "
                        + "'user_allow_other' in /etc/fuse.conf)") + " so that the disk's owner and mode decide");
            }
        }
    }

    /** A value inside libfuse's -o list: commas and backslashes escaped. */
    static String escapeOption(String value) {
        return value.replace("\\", "\\\\").replace(",", "\\,");
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
