package io.diskstack.fuse;

/** Quorum of three raw images through the mount. */
class QuorumRawMountTest extends QuorumMountBase {
    @Override
    String format() {
        return "raw";
    }
}
