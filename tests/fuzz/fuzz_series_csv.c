/* fuzz_series_csv.c: libFuzzer target for the CSV series loader
 * (controlplane/offline/series_csv.c): every input is parsed in the default (repairing), strict,
 * averaging and sorting modes; a parsed series is checked to be regular and finite, and its repairs
 * are described. */
#include "offline/series_csv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const series_csv_opts modes[5] = {{0},
                                             {.strict = 1},
                                             {.dup = SERIES_DUP_MEAN, .min_rows = 3},
                                             {.sort = 1},
                                             {.sort = 1, .strict = 1, .dup = SERIES_DUP_MEAN}};
    for (int k = 0; k < 5; k++) {
        series_csv s;
        char err[256];
        if (series_csv_parse((const char *)data, size, &modes[k], &s, err, sizeof err) != 0)
            continue;
        if (s.n < 2 || s.step <= 0) abort();
        for (size_t i = 0; i < s.n; i++)
            if (!isfinite(s.y[i])) abort();
        char desc[512];
        series_csv_describe_repairs(&s.stats, desc, sizeof desc);
        series_csv_fini(&s);
    }
    return 0;
}
