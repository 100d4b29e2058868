/* hmac.c: HMAC-SHA256 and constant-time comparison through libcrypto (see hmac.h). */
#include "hmac.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

int tide_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[TIDE_HMAC_SHA256_LEN]) {
    unsigned int outlen = 0;
    static const unsigned char empty[1];
    if (keylen > INT_MAX) return -EINVAL;
    /* HMAC() takes a NULL key as "reuse the previous one": never pass NULL. */
    if (!HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, msg, len, out, &outlen) ||
        outlen != TIDE_HMAC_SHA256_LEN)
        return -EIO;
    return 0;
}

int tide_ct_equal(const void *a, const void *b, size_t n) {
    return CRYPTO_memcmp(a, b, n) == 0;
}
