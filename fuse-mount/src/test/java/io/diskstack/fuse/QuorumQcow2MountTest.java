package io.diskstack.fuse;

/** Quorum of three qcow2 images through the mount, corrupted inside their data clusters. */
class QuorumQcow2MountTest extends QuorumMountBase {
    @Override
    String format() {
        return "qcow2";
    }
}
