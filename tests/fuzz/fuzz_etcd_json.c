/* fuzz_etcd_json.c: libFuzzer target for what the cluster module decodes from etcd's v3 JSON
 * gateway (cluster/etcd_json.h): a range answer, a txn answer, a lease answer, a watch line,
 * an error body, base64. The first byte picks the decoder; the rest is the body, not
 * NUL-terminated. */
#include "cluster/etcd_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t n = size - 1;
    char *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    char err[256], msg[128];
    int ok, code;
    int64_t a, b;
    switch (data[0] % 6) {
    case 0: {
        etcd_range r;
        etcd_range_parse(buf, n, 100, &r, err, sizeof err);
        etcd_range_free(&r);
        break;
    }
    case 1: {
        etcd_kv kv;
        etcd_txn_parse(buf, n, &ok, &a, &kv, err, sizeof err);
        etcd_kv_fini(&kv);
        break;
    }
    case 2:
        etcd_lease_parse(buf, n, &a, &b, err, sizeof err);
        break;
    case 3: {
        etcd_watch_msg m;
        etcd_watch_parse(buf, n, &m, err, sizeof err);
        etcd_watch_msg_free(&m);
        break;
    }
    case 4:
        etcd_error_parse(buf, n, &code, msg, sizeof msg);
        break;
    default: {
        char *out;
        size_t len;
        if (etcd_b64_decode(buf, n, 4096, &out, &len) == 0) {
            /* what decodes encodes to a text that decodes to the same bytes */
            char *back = etcd_b64_encode(out, len), *again = NULL;
            size_t alen = 0;
            if (back && (etcd_b64_decode(back, strlen(back), 4096, &again, &alen) != 0 ||
                         alen != len || memcmp(again, out, len) != 0))
                abort();
            free(again);
            free(back);
            free(out);
        }
    }
    }
    free(buf);
    return 0;
}
