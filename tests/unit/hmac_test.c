/* hmac_test.c: the handshake's HMAC-SHA256 (libcrypto) against the RFC 4231 test cases, and
 * the constant-time comparison. */
#include "hmac.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static void hex(const uint8_t *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static size_t unhex(const char *s, uint8_t *out) {
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

TEST(hmac_sha256_rfc4231) {
    static const struct {
        const char *key, *data, *mac; /* hex; key NULL = 131 bytes of 0xaa */
    } cases[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "dddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
         "cdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {NULL,
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
         "617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t key[200], data[200], mac[TIDE_HMAC_SHA256_LEN];
        char out[2 * TIDE_HMAC_SHA256_LEN + 1];
        size_t kl = 131, dl = unhex(cases[i].data, data);
        if (cases[i].key)
            kl = unhex(cases[i].key, key);
        else
            memset(key, 0xaa, kl);
        T_EQ_INT(tide_hmac_sha256(key, kl, data, dl, mac), 0);
        hex(mac, sizeof mac, out);
        T_EQ_STR(out, cases[i].mac);
    }
}

TEST(hmac_sha256_empty_key_is_not_reuse) {
    /* HMAC() treats a NULL key as "the previous key": an empty key must still be empty. */
    uint8_t a[TIDE_HMAC_SHA256_LEN], b[TIDE_HMAC_SHA256_LEN];
    T_EQ_INT(tide_hmac_sha256("k", 1, "m", 1, a), 0);
    T_EQ_INT(tide_hmac_sha256("", 0, "m", 1, b), 0);
    T_ASSERT(memcmp(a, b, sizeof a) != 0);
    char out[2 * TIDE_HMAC_SHA256_LEN + 1];
    T_EQ_INT(tide_hmac_sha256("", 0, "", 0, b), 0);
    hex(b, sizeof b, out);
    T_EQ_STR(out, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(ct_equal) {
    uint8_t a[32] = {0}, b[32] = {0};
    T_ASSERT(tide_ct_equal(a, b, sizeof a));
    b[31] = 1;
    T_ASSERT(!tide_ct_equal(a, b, sizeof a));
    b[31] = 0, b[0] = 0x80;
    T_ASSERT(!tide_ct_equal(a, b, sizeof a));
    T_ASSERT(tide_ct_equal(a, b, 0));
}
