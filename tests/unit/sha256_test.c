/* sha256_test.c: shared/sha256 against the FIPS 180-4 examples, the RFC 4231 HMAC-SHA256 test
 * cases and OpenSSL's libcrypto over random keys and messages of every length around the
 * block boundaries. */
#include "sha256.h"
#include "test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const uint8_t *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
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

static const char *digest_hex(const void *msg, size_t len) {
    static char out[2 * TIDE_SHA256_LEN + 1];
    uint8_t d[TIDE_SHA256_LEN];
    tide_sha256(msg, len, d);
    hex(d, sizeof d, out);
    return out;
}

TEST(sha256_fips_examples) {
    T_EQ_STR(digest_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    T_EQ_STR(digest_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    T_EQ_STR(digest_hex(m448, strlen(m448)),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a' fed in uneven pieces */
    static char a[1000];
    memset(a, 'a', sizeof a);
    tide_sha256_ctx c;
    tide_sha256_init(&c);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = step < left ? step : left;
        if (n > sizeof a) n = sizeof a;
        tide_sha256_update(&c, a, n);
        left -= n;
        step = step % 997 + 7;
    }
    uint8_t d[TIDE_SHA256_LEN];
    char out[65];
    tide_sha256_final(&c, d);
    hex(d, sizeof d, out);
    T_EQ_STR(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(hmac_sha256_rfc4231) {
    static const struct {
        const char *key, *data, *mac; /* hex */
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
        /* 131-byte key: hashed first */
        {NULL, /* 131 bytes of 0xaa */
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
         "617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t key[200], data[200], mac[TIDE_SHA256_LEN];
        char out[65];
        size_t kl = 131, dl = unhex(cases[i].data, data);
        if (cases[i].key) kl = unhex(cases[i].key, key);
        else memset(key, 0xaa, kl);
        tide_hmac_sha256(key, kl, data, dl, mac);
        hex(mac, sizeof mac, out);
        T_EQ_STR(out, cases[i].mac);
    }
}

TEST(hmac_sha256_agrees_with_openssl) {
    srand(12345);
    uint8_t key[300], msg[300];
    for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)rand(), msg[i] = (uint8_t)rand();
    for (size_t kl = 0; kl <= 140; kl += 7) {
        for (size_t ml = 0; ml <= 260; ml++) {
            uint8_t a[TIDE_SHA256_LEN], b[EVP_MAX_MD_SIZE];
            unsigned int bl = 0;
            tide_hmac_sha256(key, kl, msg, ml, a);
            T_ASSERT(HMAC(EVP_sha256(), key, (int)kl, msg, ml, b, &bl) != NULL);
            T_EQ_INT(bl, TIDE_SHA256_LEN);
            if (memcmp(a, b, TIDE_SHA256_LEN) != 0) T_FAIL("key %zu bytes, message %zu bytes differ", kl, ml);
        }
    }
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
