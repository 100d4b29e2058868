/* fuzz_hb_record.c: libFuzzer target for the HAProxyBackend executor's record decoder
 * (exec/hb_record.h); what parses is formatted again and must parse back the same. */
#include "exec/hb_record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256];
    hb_rec_replica *r = NULL;
    size_t n = 0;
    if (hb_record_parse(buf, size, "web", &r, &n, err, sizeof err) == 0) {
        char *txt = hb_record_format("web", r, n);
        if (txt) {
            hb_rec_replica *r2 = NULL;
            size_t n2 = 0;
            if (hb_record_parse(txt, strlen(txt), "web", &r2, &n2, err, sizeof err) != 0 || n2 != n)
                abort();
            free(r2);
            free(txt);
        }
    }
    free(r);
    free(buf);
    return 0;
}
