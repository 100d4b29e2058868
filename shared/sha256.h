/* sha256.h: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained.
 *
 * The wire handshake needs one HMAC per connection. Doing it with libcrypto made every agent
 * map libcrypto and initialise OpenSSL 3's provider machinery at its first handshake: about
 * 3.4 MB of resident memory in a process whose budget is 10 MB. This small implementation is
 * checked against the FIPS and RFC 4231 vectors and against OpenSSL in tests/unit/sha256_test.c. */
#ifndef TIDE_SHA256_H
#define TIDE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TIDE_SHA256_LEN 32
#define TIDE_SHA256_BLOCK 64

typedef struct tide_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t buf[TIDE_SHA256_BLOCK];
    size_t nbuf;
} tide_sha256_ctx;

void tide_sha256_init(tide_sha256_ctx *c);
void tide_sha256_update(tide_sha256_ctx *c, const void *data, size_t len);
void tide_sha256_final(tide_sha256_ctx *c, uint8_t out[TIDE_SHA256_LEN]);
void tide_sha256(const void *data, size_t len, uint8_t out[TIDE_SHA256_LEN]);

/* HMAC-SHA256 of msg under key (any length; longer than a block is hashed first). */
void tide_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                      uint8_t out[TIDE_SHA256_LEN]);

/* 1 when the n bytes at a and b are equal; the time taken does not depend on where they
 * differ (for comparing MACs). */
int tide_ct_equal(const void *a, const void *b, size_t n);

#endif
