/*
 * sha256.h — SHA-256 (FIPS 180-4), for the model's fingerprint in a version's manifest.
 * Part of storage/ (the manifest records it); a small self-contained implementation so that
 * precast needs no crypto library.  Not for secrets: no constant-time promises are needed for
 * fingerprinting a file.
 *
 * No global state; a sha256_ctx is for one thread at a time.
 */
#ifndef PRECAST_STORAGE_SHA256_H
#define PRECAST_STORAGE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/status.h"

#define SHA256_DIGEST_BYTES 32
/* 64 lower-case hex digits and a NUL. */
#define SHA256_HEX_BYTES 65

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t nbytes;          /* message length so far */
    unsigned char buf[64];    /* a partial block */
    size_t nbuf;
} sha256_ctx;

/* Starts a new digest. */
void sha256_init(sha256_ctx *c);

/* Adds n bytes of data (data may be NULL when n is 0).  Any split of a message into calls
 * gives the same digest. */
void sha256_update(sha256_ctx *c, const void *data, size_t n);

/* Finishes the digest into out; c must be re-initialised before it is used again. */
void sha256_final(sha256_ctx *c, unsigned char out[SHA256_DIGEST_BYTES]);

/* The digest of data[0..n) as 64 lower-case hex digits + NUL in hex. */
void sha256_hex(const void *data, size_t n, char hex[SHA256_HEX_BYTES]);

/* The digest of the file at path, read in 64 KiB pieces (constant memory), as hex.
 * Missing file -> PC_ERR_NOINPUT, a read error -> PC_ERR_IO, naming the path; hex is then
 * the empty string. */
pc_status sha256_file(const char *path, char hex[SHA256_HEX_BYTES], char *err, size_t errlen);

#endif
