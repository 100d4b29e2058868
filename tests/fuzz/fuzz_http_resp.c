/* fuzz_http_resp.c: libFuzzer target for the HTTP response-head parser the load generator
 * reads servers' answers with (not NUL-terminated input, so ASan catches a read past the end). */
#include "http_req.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    http_resp r;
    int rc = http_resp_parse(buf, size, &r);
    if (rc == 1 && (r.status < 100 || r.status > 999 || r.head_len > size || r.head_len == 0 ||
                    r.content_len >= (1LL << 40)))
        abort();
    free(buf);
    return 0;
}
