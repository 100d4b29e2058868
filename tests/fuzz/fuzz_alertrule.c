/* fuzz_alertrule.c: libFuzzer target for the alert rule parser, its validation and the
 * annotation templates it accepts. */
#include "spec/alertrule.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static alertrule_spec spec;
    wl_problems p;
    wl_problems_init(&p);
    int rc = ar_parse((const char *)data, size, &spec, &p);
    if (rc == 0 && p.n != 0) abort();              /* success must come with no problems */
    if (rc != 0 && rc != -12 && p.n == 0) abort(); /* a rejection must say why */
    if (rc == 0) { /* every accepted template expands, within its buffer */
        const char *names[] = {"a"}, *values[] = {"b"};
        ar_vars v = {1.5, 2, NAN, NAN, 1700000000, 1699990000, "r", names, values, 1};
        for (int i = 0; i < spec.n_annotations; i++) {
            char out[64], why[160];
            if (ar_template_expand(spec.annotations[i].value, &v, out, sizeof out, why,
                                   sizeof why) != 0)
                abort();
            if (strlen(out) >= sizeof out) abort();
        }
    }
    char kind[32];
    ar_doc_kind((const char *)data, size, kind, sizeof kind);
    char *txt = wl_problems_format(&p);
    free(txt);
    wl_problems_fini(&p);
    return 0;
}
