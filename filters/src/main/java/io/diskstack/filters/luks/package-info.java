/**
 * The {@code luks} filter: LUKS1 and LUKS2 volumes (QEMU's and cryptsetup's on-disk format).
 *
 * <p>Open: {@code {"driver":"luks","node-name":"l0","file":"f0","key-secret":"s0"}}, optionally
 * {@code "header":"h0"} for a detached header. The node shows the decrypted payload; its size is
 * the child's size less the payload offset. Supported: aes with xts, cbc (plain, plain64,
 * essiv:sha256 IVs) and ecb; 128-512-bit keys; PBKDF2 with sha1/224/256/384/512, and for LUKS2
 * Argon2i/Argon2id; LUKS2 sectors of 512 to 4096 bytes. Discards are not passed down (they would
 * read back as noise), and block status reports everything as data.
 *
 * <p>Create ({@code diskstack create -f luks}): QEMU's -o names key-secret, cipher-alg,
 * cipher-mode, ivgen-alg, ivgen-hash-alg, hash-alg, iter-time, plus {@code format=luks1|luks2}
 * (LUKS1 by default: QEMU 7.2 opens only that), {@code sector-size}, {@code kdf}, {@code kdf-time},
 * {@code kdf-memory}, {@code kdf-cpus} for LUKS2.
 *
 * <p>Key slots: {@link io.diskstack.filters.luks.LuksKeySlots} for image files, and the
 * {@code keyslots}, {@code add-key} and {@code remove-key} control files of an open node.
 *
 * <p>Crypto comes from the JDK (AES/ECB as the block primitive of XTS, AES/CBC, HMAC for PBKDF2,
 * SHA for the AF splitter) and Bouncy Castle (Argon2). Passphrases come from {@code secret}
 * objects and never appear in messages, the graph view or child process arguments; key copies
 * are wiped on close (the JDK's internal AES key schedules cannot be wiped from outside).
 */
package io.diskstack.filters.luks;
