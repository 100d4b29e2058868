/* fuzz_workload.c: libFuzzer target for the workload spec parser and validator. */
#include "spec/workload.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static workload_spec spec;
    wl_problems p;
    wl_problems_init(&p);
    int rc = wl_parse((const char *)data, size, &spec, &p);
    if (rc == 0 && p.n != 0) abort();              /* success must come with no problems */
    if (rc != 0 && rc != -12 && p.n == 0) abort(); /* a rejection must say why */
    char *txt = wl_problems_format(&p);
    free(txt);
    wl_problems_fini(&p);
    return 0;
}
