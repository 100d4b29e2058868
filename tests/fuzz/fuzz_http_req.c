/* fuzz_http_req.c: libFuzzer target for the agent's HTTP request-head parser (not
 * NUL-terminated input, so ASan catches a read past the end). */
#include "http_req.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    http_req r;
    int rc = http_req_parse(buf, size, &r);
    if (rc == 1 && (r.path[0] != '/' || strlen(r.method) == 0)) abort();
    free(buf);
    return 0;
}
