/* hmac.h: HMAC-SHA256 and constant-time comparison for the wire handshake, from OpenSSL's
 * libcrypto (the design card's library for HMAC; no home-made cryptography).
 *
 * Memory note for the agent (budget 10 MB resident): OpenSSL 3's first HMAC() sets up its
 * provider machinery (~2 MB of touched pages) on top of mapping libcrypto (~1.5 MB); with the
 * rest of the agent lean that still fits with room (BENCHMARKS.md, "Agent sampling"). */
#ifndef TIDE_HMAC_H
#define TIDE_HMAC_H

#include <stddef.h>
#include <stdint.h>

#define TIDE_HMAC_SHA256_LEN 32

/* HMAC-SHA256 of msg under key (any length). Returns 0, or -EIO when libcrypto fails. */
int tide_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[TIDE_HMAC_SHA256_LEN]);

/* 1 when the n bytes at a and b are equal, in time that does not depend on where they differ. */
int tide_ct_equal(const void *a, const void *b, size_t n);

#endif
